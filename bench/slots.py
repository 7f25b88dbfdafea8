"""Measure how well interview answers are read into slots: the rules, the language
model, and the two together as the interview uses them, side by side.

Run: python bench/slots.py [PATH]; default bench/data/slot_answers.jsonl. Each
answer goes to its step as the worker would take it. An answer counts as right
when every expected slot has the expected value; a free-text answer's expected
slots are those of later steps that it already answers (read ahead), and a
later step's slot that the answer does not give counts as wrong. The model
columns appear when OPENAI_API_KEY and LLM_MODEL (and OPENAI_BASE_URL for a
server other than OpenAI's) are set; the model only ever sees anonymised text.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows import load_flows  # noqa: E402
from flows.answers import AnswerError, check_value, parse_answer  # noqa: E402
from flows.model import FREE_TEXT_TYPES, Flow  # noqa: E402

DEFAULT = ROOT / "bench/data/slot_answers.jsonl"


def read_deterministically(flow: Flow, row: dict) -> dict:
    """Return the slots the rule-based parser reads from the answer."""
    step = flow.steps[row["step"]]
    try:
        return {step.slot: parse_answer(step, row["text"], row["language"])}
    except AnswerError:
        return {}


def read_with_model(assistant: Any, flow: Flow, row: dict) -> dict:
    """Return the slots the model reads, each checked against the flow."""
    step = flow.steps[row["step"]]
    reading = assistant.read(
        flow, step, row["text"], row["language"], state={"slots": {}}, follow_up=False
    )
    found: dict[str, Any] = {}
    if reading is None:
        return found
    values = dict(reading.ahead)
    if reading.value is not None:
        values[step.slot] = reading.value
    slots = flow.slots
    for slot, value in values.items():
        try:
            found[slot] = check_value(slots[slot], value)
        except (AnswerError, KeyError):
            continue

    return found


def combined(rules: dict, model: dict, own: str) -> dict:
    """The interview's way: the rules first, the model where they cannot read,
    and the model's reading of later steps."""
    found = {slot: value for slot, value in model.items() if slot != own}
    if own in rules or own in model:
        found[own] = rules[own] if own in rules else model[own]

    return found


def same(found: object, expected: object) -> bool:
    """Compare slot values; the order of a multi-choice answer does not matter."""
    if isinstance(found, list) and isinstance(expected, list):
        return sorted(found) == sorted(expected)

    return found == expected


def right(found: dict, expected: dict, own: str) -> bool:
    """Every expected slot read correctly, and no later step's slot made up."""
    made_up = set(found) - set(expected) - {own}

    return not made_up and all(
        k in found and same(found[k], v) for k, v in expected.items()
    )


def model_assistant() -> Any | None:
    """A ModelAssistant on the configured server, or None without one."""
    if not (os.environ.get("OPENAI_API_KEY") and os.environ.get("LLM_MODEL")):
        return None
    from bot.assistant import ModelAssistant
    from bot.llm import CircuitBreaker, LanguageModel
    from bot.llm_openai import OpenAICompatible
    from bot.models import Conversation

    backend = OpenAICompatible(
        base_url=os.environ.get("OPENAI_BASE_URL"),
        api_key=os.environ["OPENAI_API_KEY"],
        model=os.environ["LLM_MODEL"],
        timeout=60,
        max_retries=2,
    )
    model = LanguageModel(backend, CircuitBreaker(None), lambda record: None)

    return ModelAssistant(model, Conversation(state={}))


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    flow = load_flows().interview
    assistant = model_assistant()
    modes = ["rules"] + (["model", "both"] if assistant else [])
    hits: dict[str, Counter] = {mode: Counter() for mode in modes}
    again: dict[str, Counter] = {mode: Counter() for mode in modes}
    total: Counter = Counter()
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    for row in rows:
        step = flow.steps[row["step"]]
        own = step.slot
        began = time.perf_counter()
        found = {"rules": read_deterministically(flow, row)}
        seconds["rules"].append(time.perf_counter() - began)
        if assistant:
            began = time.perf_counter()
            found["model"] = read_with_model(assistant, flow, row)
            seconds["model"].append(time.perf_counter() - began)
            found["both"] = combined(found["rules"], found["model"], own)
        keys = (("step", row["step"]), ("language", row["language"]), ("all", ""))
        for key in keys:
            total[key] += 1
            for mode in modes:
                hits[mode][key] += right(found[mode], row["expected"], own)
                if step.type not in FREE_TEXT_TYPES:
                    again[mode][key] += own not in found[mode]

    print(f"{len(rows)} answers from {path.name}")
    if assistant is None:
        print("model: not configured (set OPENAI_API_KEY and LLM_MODEL to compare)")
    header = "".join(f"{mode + ' right':>13}{'re-asked':>10}" for mode in modes)
    print(f"{'':<9}{'':<22}{'n':>4}{header}")
    for key in sorted(total):
        kind, name = key
        cells = "".join(
            f"{hits[m][key] / total[key]:>13.2f}{again[m][key] / total[key]:>10.2f}"
            for m in modes
        )
        print(f"{kind:<9}{name:<22}{total[key]:>4}{cells}")
    for mode in modes:
        ms = [s * 1000 for s in seconds[mode]]
        print(f"{mode}: {statistics.median(ms):.2f} ms median per answer")


if __name__ == "__main__":
    main()
