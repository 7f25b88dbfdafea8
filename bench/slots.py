"""Measure how well interview answers are read into slots, per step and language.

Run: python bench/slots.py [PATH]; default bench/data/slot_answers.jsonl. Each
answer goes to its step's parser as the worker would (deterministic mode,
flows/answers.py); an answer counts as right when every expected slot has the
expected value. The language-model reading (issue 7) will be measured beside it.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows import load_flows  # noqa: E402
from flows.answers import AnswerError, parse_answer  # noqa: E402

DEFAULT = ROOT / "bench/data/slot_answers.jsonl"


def read_deterministically(flow, row: dict) -> dict:  # noqa: ANN001
    """Return the slots the rule-based parser reads from the answer."""
    step = flow.steps[row["step"]]
    try:
        return {step.slot: parse_answer(step, row["text"], row["language"])}
    except AnswerError:
        return {}


def same(found: object, expected: object) -> bool:
    """Compare slot values; the order of a multi-choice answer does not matter."""
    if isinstance(found, list) and isinstance(expected, list):
        return sorted(found) == sorted(expected)

    return found == expected


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    flow = load_flows().interview
    right: Counter = Counter()
    total: Counter = Counter()
    asked_again: Counter = Counter()
    seconds = []
    for row in rows:
        began = time.perf_counter()
        found = read_deterministically(flow, row)
        seconds.append(time.perf_counter() - began)
        expected = row["expected"]
        own = flow.steps[row["step"]].slot
        ok = own in found and same(found[own], expected[own])
        for key in (("step", row["step"]), ("language", row["language"]), ("all", "")):
            total[key] += 1
            right[key] += ok
            asked_again[key] += not found

    print(f"{len(rows)} answers from {path.name}; deterministic mode")
    print(f"{'':<9}{'':<22}{'n':>4}{'right':>8}{'re-asked':>10}")
    for key in sorted(total):
        kind, name = key
        share = right[key] / total[key]
        again = asked_again[key] / total[key]
        print(f"{kind:<9}{name:<22}{total[key]:>4}{share:>8.2f}{again:>10.2f}")
    ms = [s * 1000 for s in seconds]
    print(f"{statistics.median(ms):.2f} ms median per answer")


if __name__ == "__main__":
    main()
