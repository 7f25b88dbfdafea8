"""Counsellor teams: who receives a handoff and when the client can expect contact.

Read from flows/teams.yaml with the flows and checked against the interview's
slots and municipalities; `Teams.route` picks the team for a finished interview.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from flows.conditions import Condition, parse_condition
from flows.model import Flow, FlowError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
# Addresses that are placeholders until the city fills in the real ones.
UNSET_DOMAINS = (".invalid", ".example", "example.com", "example.org")


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    email: tuple[str, ...]
    municipalities: tuple[str, ...] = ()
    when: Condition | None = None

    @property
    def unset(self) -> bool:
        """True while an address is still a placeholder."""
        return any(address.lower().endswith(UNSET_DOMAINS) for address in self.email)


@dataclass(frozen=True)
class Reply:
    """The counsellors' working days and the reply time promised to clients."""

    working_days: int
    days: frozenset[int]
    opens: dt.time
    closes: dt.time
    timezone: str
    closed: frozenset[dt.date]

    def working(self, day: dt.date) -> bool:
        return day.weekday() in self.days and day not in self.closed

    def deadline(self, now: dt.datetime) -> dt.date:
        """Return the last day by which a counsellor promises to make contact.

        `now` is naive UTC or aware. A case that arrives outside working hours
        counts from the next working day.
        """
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        local = now.astimezone(ZoneInfo(self.timezone))
        day = local.date()
        if not self.working(day) or local.time() >= self.closes:
            day = self._next_working(day)
        for _ in range(self.working_days):
            day = self._next_working(day)

        return day

    def _next_working(self, day: dt.date) -> dt.date:
        day += dt.timedelta(days=1)
        while not self.working(day):
            day += dt.timedelta(days=1)

        return day


@dataclass(frozen=True)
class Teams:
    teams: dict[str, Team]
    default: str
    reply: Reply

    def route(self, slots: dict[str, Any], today: dt.date | None = None) -> Team:
        """Return the team for a client with these interview `slots`."""
        for team in self.teams.values():
            if team.when is not None and team.when.holds(slots, today):
                return team
        municipality = slots.get("municipality")
        for team in self.teams.values():
            if municipality in team.municipalities:
                return team

        return self.teams[self.default]


def load_teams(path: Path, flow: Flow) -> Teams:
    """Read `path` and check it against the interview `flow`."""

    def fail(problem: str) -> FlowError:
        return FlowError(f"TEAMS {path}: {problem}")

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise fail(f"cannot be read: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("teams"), list):
        raise fail("expected 'teams', a list, with 'default' and 'reply'")

    municipalities = {c.value for c in flow.steps["municipality"].choices}
    teams: dict[str, Team] = {}
    for item in raw["teams"]:
        team = _team(item, fail)
        if team.id in teams:
            raise fail(f"team {team.id!r} is listed twice")
        unknown = set(team.municipalities) - municipalities
        if unknown:
            raise fail(
                f"team {team.id!r} names unknown municipalities {sorted(unknown)}"
            )
        problem = team.when.problem(flow.slots) if team.when else None
        if problem:
            raise fail(f"team {team.id!r} has a condition {problem}")
        teams[team.id] = team
    default = str(raw.get("default") or "")
    if default not in teams:
        raise fail(f"default {default!r} is not one of the teams {sorted(teams)}")

    return Teams(teams=teams, default=default, reply=_reply(raw.get("reply"), fail))


def _team(item: Any, fail: Any) -> Team:
    if not isinstance(item, dict) or not item.get("id") or not item.get("name"):
        raise fail(f"every team needs an id and a name; found {item!r:.60}")
    team_id = str(item["id"])
    email = item.get("email")
    email = [email] if isinstance(email, str) else email
    if not email or not all(isinstance(a, str) and ADDRESS.match(a) for a in email):
        raise fail(f"team {team_id!r} needs 'email', one or more addresses")
    try:
        when = parse_condition(item["when"]) if item.get("when") else None
    except ValueError as exc:
        raise fail(f"team {team_id!r}: {exc}") from exc

    return Team(
        id=team_id,
        name=str(item["name"]),
        email=tuple(email),
        municipalities=tuple(map(str, item.get("municipalities") or ())),
        when=when,
    )


def _reply(raw: Any, fail: Any) -> Reply:
    if not isinstance(raw, dict):
        raise fail("expected 'reply' with working_days, days, opens and closes")
    working_days = raw.get("working_days")
    if isinstance(working_days, bool) or not isinstance(working_days, int):
        raise fail(f"reply: working_days {working_days!r} must be a whole number")
    if not 1 <= working_days <= 30:
        raise fail(f"reply: working_days {working_days} must be 1 to 30")
    days = [str(day).lower()[:3] for day in raw.get("days") or ()]
    if not days or not set(days) <= set(WEEKDAYS):
        raise fail(f"reply: days must list weekdays like mon, tue; got {days}")
    timezone = str(raw.get("timezone") or "Europe/Helsinki")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(f"reply: timezone {timezone!r} is not known") from None
    closed = []
    for day in raw.get("closed") or ():
        if not isinstance(day, dt.date):
            raise fail(f"reply: closed day {day!r} is not a date like 2026-12-24")
        closed.append(day)
    opens, closes = _time(raw.get("opens"), fail), _time(raw.get("closes"), fail)
    if opens >= closes:
        raise fail("reply: opens must be before closes")

    return Reply(
        working_days=working_days,
        days=frozenset(WEEKDAYS.index(day) for day in days),
        opens=opens,
        closes=closes,
        timezone=timezone,
        closed=frozenset(closed),
    )


def _time(raw: Any, fail: Any) -> dt.time:
    try:
        return dt.time.fromisoformat(str(raw))
    except ValueError:
        raise fail(f"reply: {raw!r} is not a time like 08:00") from None
