"""The civic-orientation course as data: lessons from flows/course.yaml, texts from
the `course` catalogues, and the clock that says when a group's messages fall due.

Pure: no database and no channels. `bot/course.py` turns due times into messages.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from flows.model import FlowError
from translations import LANGUAGES, load_catalogue

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DOMAIN = "course"
# The languages the lesson texts are written in first; the others may lack a
# text, and a participant then reads the English one.
WRITTEN_FIRST = ("fi", "en")
# Local hours in which course messages may go out: 8:00 to 20:59.
DAY_STARTS, DAY_ENDS = 8, 21
# Kinds of message a lesson sends, in the order they fall due.
PROMPT, QUIZ, REMINDER = "prompt", "quiz", "reminder"
ID = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


@dataclass(frozen=True)
class Question:
    """One quiz question: its options are numbered from 1, `answer` is right."""

    options: int
    answer: int


@dataclass(frozen=True)
class Lesson:
    id: str
    module: str
    prompts: int
    quiz: tuple[Question, ...]
    # Keys (relative to the lesson) whose facts the city must check: local
    # services and places, and national rules that change.
    check_locally: tuple[str, ...] = ()
    check_current: tuple[str, ...] = ()

    def key(self, part: str) -> str:
        return f"course.{self.id}.{part}"

    def keys(self) -> list[str]:
        """Every catalogue key this lesson's messages use."""
        keys = [self.key("title"), self.key("reflection")]
        keys += [self.key(f"prompt.{n}") for n in range(1, self.prompts + 1)]
        for number, question in enumerate(self.quiz, start=1):
            keys += [
                self.key(f"quiz.{number}.question"),
                self.key(f"quiz.{number}.explanation"),
            ]
            keys += [
                self.key(f"quiz.{number}.option.{option}")
                for option in range(1, question.options + 1)
            ]

        return keys


@dataclass(frozen=True)
class Timing:
    """When a lesson's messages go, relative to its session."""

    prompt_hours_before: float = 3
    session_minutes: int = 180
    reminder_hours: float = 24
    # How long a message may still go after it fell due (a worker or Redis
    # was down, the participant paused); later it is recorded as missed. A
    # prompt may go until its session starts.
    quiz_late_hours: float = 48
    reminder_late_hours: float = 12


@dataclass(frozen=True)
class Course:
    name: str
    lessons: tuple[Lesson, ...]
    timing: Timing
    path: Path

    def lesson(self, number: int) -> Lesson:
        """Return lesson `number`, counted from 1 like the participant sees it."""
        return self.lessons[number - 1]


def load_course(path: Path) -> Course | None:
    """Read and check the course; None if the file is absent (no course offered)."""
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise FlowError(f"COURSE {path}: cannot be read as YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("lessons"), list):
        raise FlowError(f"COURSE {path}: needs a list of lessons under 'lessons'")
    lessons = tuple(
        _lesson(path, item, number)
        for number, item in enumerate(data["lessons"], start=1)
    )
    if not lessons:
        raise FlowError(f"COURSE {path}: has no lessons")
    seen: set[str] = set()
    for lesson in lessons:
        if lesson.id in seen:
            raise FlowError(f"COURSE {path}: lesson {lesson.id!r} appears twice")
        seen.add(lesson.id)
    try:
        timing = Timing(**(data.get("timing") or {}))
    except TypeError as exc:
        raise FlowError(f"COURSE {path}: timing: {exc}") from exc
    course = Course(str(data.get("course") or path.stem), lessons, timing, path)
    check_course_texts(course)

    return course


def _lesson(path: Path, item: Any, number: int) -> Lesson:
    where = f"COURSE {path}: lesson {number}"
    if not isinstance(item, dict) or not ID.match(str(item.get("id", ""))):
        raise FlowError(f"{where}: needs an id of lower-case letters and _")
    where = f"COURSE {path}: lesson {item['id']!r}"
    prompts = item.get("prompts")
    if not isinstance(prompts, int) or not 1 <= prompts <= 4:
        raise FlowError(f"{where}: prompts is the number of prompt texts, 1 to 4")
    quiz = []
    for question in item.get("quiz") or []:
        options, answer = question.get("options"), question.get("answer")
        if not isinstance(options, int) or not 2 <= options <= 5:
            raise FlowError(f"{where}: a quiz question has 2 to 5 options")
        if not isinstance(answer, int) or not 1 <= answer <= options:
            raise FlowError(f"{where}: answer is the right option, 1 to {options}")
        quiz.append(Question(options, answer))
    if not quiz:
        raise FlowError(f"{where}: needs a quiz of at least one question")
    lesson = Lesson(
        id=item["id"],
        module=str(item.get("module") or item["id"]),
        prompts=prompts,
        quiz=tuple(quiz),
        check_locally=tuple(item.get("check_locally") or ()),
        check_current=tuple(item.get("check_current") or ()),
    )
    known = {key.removeprefix(f"course.{lesson.id}.") for key in lesson.keys()}
    for part in (*lesson.check_locally, *lesson.check_current):
        if not any(key == part or key.startswith(part + ".") for key in known):
            raise FlowError(f"{where}: marks {part!r} for checking; no such text")

    return lesson


def check_course_texts(course: Course) -> None:
    """Raise `FlowError` if a lesson text is missing in Finnish or English."""
    for code in WRITTEN_FIRST:
        catalogue = load_catalogue(code, DOMAIN)
        for lesson in course.lessons:
            missing = [key for key in lesson.keys() if key not in catalogue]
            if missing:
                raise FlowError(
                    f"COURSE {course.path}: lesson {lesson.id!r} uses text "
                    f"{missing[0]!r}, which translations/{code}/LC_MESSAGES/"
                    "course.po lacks"
                )


def course_text(key: str, language: str | None, **values: str | int) -> str:
    """Return lesson text `key` in `language`, or in English where it lacks one."""
    codes = {item.code for item in LANGUAGES}
    code = language if language in codes else "en"
    entry = load_catalogue(code, DOMAIN).get(key) or load_catalogue("en", DOMAIN)[key]

    return entry.text.format(**values) if values else entry.text


@dataclass(frozen=True)
class Schedule:
    """A group's sessions: on `days` at `time`, local to `timezone`, from `start`."""

    days: tuple[int, ...]
    time: dt.time
    timezone: ZoneInfo
    start: dt.date

    @classmethod
    def parse(cls, days: str, time: str, timezone: str, start: dt.date) -> Schedule:
        """Build a schedule from its stored or typed form; ValueError if wrong."""
        names = [day.strip().lower()[:3] for day in days.split(",") if day.strip()]
        if not names or any(name not in WEEKDAYS for name in names):
            raise ValueError(f"days must be weekdays like mon,thu (got {days!r})")
        try:
            at = dt.time.fromisoformat(time)
        except ValueError as exc:
            raise ValueError(f"time must be like 17:00 (got {time!r})") from exc
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {timezone!r}") from exc
        indexes = tuple(sorted({WEEKDAYS.index(name) for name in names}))

        return cls(indexes, at, zone, start)

    @property
    def day_names(self) -> str:
        return ",".join(WEEKDAYS[day] for day in self.days)

    def sessions(self, count: int) -> list[dt.datetime]:
        """Return the first `count` session starts, aware, in the group's zone."""
        found: list[dt.datetime] = []
        day = self.start
        while len(found) < count:
            if day.weekday() in self.days:
                found.append(dt.datetime.combine(day, self.time, self.timezone))
            day += dt.timedelta(days=1)

        return found


@dataclass(frozen=True)
class Due:
    """One message of one lesson: when it falls due and until when it may go."""

    lesson: int
    kind: str
    at: dt.datetime
    until: dt.datetime


def due_times(course: Course, schedule: Schedule) -> list[Due]:
    """Return every lesson's prompt, quiz and quiz reminder, in time order.

    Times fall in the daytime of the group's zone: a prompt that would go at
    night goes the evening before, a quiz or a reminder the next morning.
    """
    timing = course.timing
    found = []
    sessions = schedule.sessions(len(course.lessons))
    for number, session in enumerate(sessions, start=1):
        prompt = _earlier_daytime(
            session - dt.timedelta(hours=timing.prompt_hours_before)
        )
        quiz = _later_daytime(session + dt.timedelta(minutes=timing.session_minutes))
        reminder = _later_daytime(quiz + dt.timedelta(hours=timing.reminder_hours))
        found += [
            Due(number, PROMPT, prompt, session),
            Due(number, QUIZ, quiz, quiz + _hours(timing.quiz_late_hours)),
            Due(
                number,
                REMINDER,
                reminder,
                reminder + _hours(timing.reminder_late_hours),
            ),
        ]

    return sorted(found, key=lambda due: due.at)


def _hours(hours: float) -> dt.timedelta:
    return dt.timedelta(hours=hours)


def is_daytime(moment: dt.datetime, zone: ZoneInfo) -> bool:
    return DAY_STARTS <= moment.astimezone(zone).hour < DAY_ENDS


def _earlier_daytime(moment: dt.datetime) -> dt.datetime:
    """Move a time at night back to the evening before (20:00 local)."""
    local = moment.astimezone(moment.tzinfo)
    if DAY_STARTS <= local.hour < DAY_ENDS:
        return local
    day = local.date() if local.hour >= DAY_ENDS else local.date() - dt.timedelta(1)

    return dt.datetime.combine(day, dt.time(DAY_ENDS - 1), local.tzinfo)


def _later_daytime(moment: dt.datetime) -> dt.datetime:
    """Move a time at night on to the next morning (9:00 local)."""
    local = moment.astimezone(moment.tzinfo)
    if DAY_STARTS <= local.hour < DAY_ENDS:
        return local
    day = local.date() + dt.timedelta(1) if local.hour >= DAY_ENDS else local.date()

    return dt.datetime.combine(day, dt.time(DAY_STARTS + 1), local.tzinfo)
