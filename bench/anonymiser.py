"""Measure the anonymiser on the labelled sets: recall and precision per type, speed.

Run: python bench/anonymiser.py [PATH...]; default: every tests/data/pii/*.jsonl.
labelled.jsonl was looked at while the recognisers were written; unseen.jsonl
was written afterwards by someone who had not seen the code, as a fair check.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.anonymiser import analyzer, find_personal_data  # noqa: E402

SETS = Path(__file__).resolve().parents[1] / "tests/data/pii"


def labelled_spans(row: dict) -> list[tuple[int, int, str]]:
    """Find each labelled entity's position; repeated texts take the next one."""
    spans, searched = [], Counter()
    for entity in sorted(row["entities"], key=lambda e: -len(e["text"])):
        start = -1
        for _ in range(searched[entity["text"]] + 1):
            start = row["text"].find(entity["text"], start + 1)
        searched[entity["text"]] += 1
        spans.append((start, start + len(entity["text"]), entity["type"]))

    return spans


def covered(span: tuple[int, int, str], found: list, text: str) -> bool:
    """True when every non-space character of the labelled span is in a found span."""
    start, end, _ = span
    return all(
        text[i].isspace() or any(f.start <= i < f.end for f in found)
        for i in range(start, end)
    )


def evaluate(rows: list[dict]) -> dict:
    recall, precision, seconds = Counter(), Counter(), []
    for row in rows:
        began = time.perf_counter()
        found = find_personal_data(row["text"])
        seconds.append(time.perf_counter() - began)
        spans = labelled_spans(row)
        for span in spans:
            recall[(span[2], covered(span, found, row["text"]))] += 1
        for item in found:
            hit = any(item.start < e and s < item.end for s, e, _ in spans)
            precision[(item.type, hit)] += 1

    return {"recall": recall, "precision": precision, "seconds": seconds}


def ratio(counter: Counter, kind: str | None) -> tuple[int, int]:
    good = sum(n for (k, ok), n in counter.items() if ok and kind in (None, k))
    total = sum(n for (k, _), n in counter.items() if kind in (None, k))

    return good, total


def report(title: str, result: dict) -> None:
    print(f"\n{title}")
    print(f"{'type':<16} {'recall':>14} {'precision':>14}")
    kinds = sorted(
        {k for k, _ in result["recall"]} | {k for k, _ in result["precision"]}
    )
    for kind in [*kinds, None]:
        r_good, r_total = ratio(result["recall"], kind)
        p_good, p_total = ratio(result["precision"], kind)
        r = f"{r_good / r_total:.3f} ({r_good}/{r_total})" if r_total else "-"
        p = f"{p_good / p_total:.3f} ({p_good}/{p_total})" if p_total else "-"
        print(f"{kind or 'ALL':<16} {r:>14} {p:>14}")
    times = sorted(result["seconds"])
    print(
        f"time per message: mean {statistics.mean(times) * 1000:.2f} ms, "
        f"p95 {times[int(len(times) * 0.95)] * 1000:.2f} ms"
    )


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def main() -> None:
    paths = [Path(arg) for arg in sys.argv[1:]] or sorted(SETS.glob("*.jsonl"))
    began = time.perf_counter()
    analyzer()
    print(f"analyzer built in {time.perf_counter() - began:.2f} s")
    for path in paths:
        rows = load(path)
        report(f"{path.name}: {len(rows)} messages", evaluate(rows))


if __name__ == "__main__":
    main()
