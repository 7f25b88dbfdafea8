"""Counsellors' scenario files: answers in, slots, suggestions and flags out."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.conversation import Dialogue, respond
from bot.models import Client, Conversation
from flows import FLOWS_DIR
from translations import LANGUAGES

DIALOGUE = Dialogue.load()
SCENARIOS = sorted((FLOWS_DIR / "scenarios").glob("*.yaml"))


def play(scenario: dict[str, Any]) -> tuple[Conversation, list[list[str]]]:
    """Run the scenario's answers through the real dialogue, from first contact."""
    client = Client(id=1, channel="web", address="scenario", address_hash="x")
    conversation = Conversation(id=1, client_id=1, stage="new", state={})
    codes = [language.code for language in LANGUAGES]
    choice = str(codes.index(scenario["language"]) + 1)
    year = date.today().year
    answers = [
        str(answer).format(this_year=year, last_year=year - 1)
        for answer in scenario["answers"]
    ]
    turns = [respond(client, conversation, body, DIALOGUE) for body in ["Hei", choice]]
    turns += [respond(client, conversation, body, DIALOGUE) for body in answers]

    return conversation, turns


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda path: path.stem)
def test_scenario(path: Path):
    scenario = yaml.safe_load(path.read_text(encoding="utf-8"))
    expect = scenario["expect"]

    conversation, turns = play(scenario)

    state = conversation.state
    finished = state.get("outcome", {}).get("reason") == "finished"
    assert finished == expect.get("finished", True), turns[-3:]
    slots = state["interview"]["slots"]
    for slot, value in (expect.get("slots") or {}).items():
        assert slots.get(slot) == _expected(value), slot
    suggestions = state["outcome"]["suggestions"] if finished else []
    services = {s for item in suggestions for s in item["services"]}
    flags = {f for item in suggestions for f in item["flags"]}
    assert set(expect.get("suggest", [])) <= services
    assert not set(expect.get("not_suggest", [])) & services
    assert set(expect.get("flags", [])) <= flags
    assert not set(expect.get("not_flags", [])) & flags
    assert state["interview"]["skipped"] == expect.get("skipped", [])


def _expected(value: Any) -> Any:
    # YAML reads 2024-02 as text but 2024-02-01 as a date; slots hold text.
    return value.isoformat() if isinstance(value, date) else value


def test_there_are_scenarios_for_the_counsellors_rules():
    assert len(SCENARIOS) >= 2
