"""Measure language detection on short messages: accuracy per language, and speed.

Run: python bench/language.py [PATH]; default tests/data/language/short_messages.jsonl.
"Decided" counts messages the detector was sure enough about to offer a switch;
"right" counts those whose language it named correctly.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from translations.detection import best_guess, detect, preload  # noqa: E402

DEFAULT = (
    Path(__file__).resolve().parents[1] / "tests/data/language/short_messages.jsonl"
)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    began = time.perf_counter()
    preload()
    print(f"{len(rows)} messages; models loaded in {time.perf_counter() - began:.2f} s")

    total, guessed, decided, right, seconds = (
        Counter(),
        Counter(),
        Counter(),
        Counter(),
        [],
    )
    wrong: Counter = Counter()
    for row in rows:
        began = time.perf_counter()
        sure = detect(row["text"])
        guess = best_guess(row["text"])
        seconds.append(time.perf_counter() - began)
        total[row["lang"]] += 1
        guessed[row["lang"]] += bool(guess and guess.code == row["lang"])
        if sure:
            decided[row["lang"]] += 1
            right[row["lang"]] += sure.code == row["lang"]
            if sure.code != row["lang"]:
                wrong[(row["lang"], sure.code)] += 1

    header = f"{'best guess right':>17} {'decided':>9} {'right when decided':>19}"
    print(f"\n{'lang':<5} {header}")
    for code in sorted(total):
        print(
            f"{code:<5} {guessed[code] / total[code]:>17.3f} "
            f"{decided[code] / total[code]:>9.3f} "
            f"{right[code] / max(decided[code], 1):>19.3f}"
        )
    all_total, all_decided = sum(total.values()), sum(decided.values())
    accuracy = sum(right.values()) / max(all_decided, 1)
    print(
        f"{'all':<5} {sum(guessed.values()) / all_total:>17.3f} "
        f"{all_decided / all_total:>9.3f} {accuracy:>19.3f}"
    )
    if wrong:
        print("wrong when decided:", dict(wrong))
    print(f"time per message: mean {statistics.mean(seconds) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
