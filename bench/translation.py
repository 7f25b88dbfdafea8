"""Measure machine translation into Finnish: disk, load time, time per message, memory.

Run: python bench/translation.py [PACKAGES_DIR]; default instance/argos-packages,
where `flask --app wsgi translations install` puts packages. For every language
of tests/data/language/short_messages.jsonl that has a route into Finnish, it
anonymises and translates each message once (the model's cost) and then again
(the Redis cache's cost, side by side). With no packages installed it builds the
test suite's tiny copying models, which measure only Polku's and Argos's own
overhead, never real translation quality or speed.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402

from bot import crypto  # noqa: E402
from bot.anonymiser import anonymise  # noqa: E402
from translations.argos import (  # noqa: E402
    ArgosBackend,
    install_package,
    installed_packages,
    preload,
)
from translations.translator import Translator  # noqa: E402

MESSAGES = ROOT / "tests/data/language/short_messages.jsonl"


def packages_dir(work: Path) -> tuple[Path, bool]:
    default = ROOT / "instance/argos-packages"
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    if installed_packages(folder):
        return folder, False

    from tests.argos_packages import build_package

    folder = work / "packages"
    install_package(build_package(work, "uk", "en", {"кухарем": "cook"}), folder)
    install_package(build_package(work, "en", "fi", {"cook": "kokki"}), folder)

    return folder, True


def cache() -> Redis | None:
    try:
        redis = Redis(host="127.0.0.1", port=6379, db=14, socket_connect_timeout=0.5)
        redis.flushdb()
        return redis
    except Exception:  # noqa: BLE001 - no Redis: measure without the cache
        return None


def main() -> None:
    crypto.configure(("b" * 43 + "=",))
    began = time.perf_counter()
    preload()
    print(f"importing Argos: {time.perf_counter() - began:.1f} s")
    work = Path(tempfile.mkdtemp(prefix="polku-bench-"))
    folder, toy = packages_dir(work)
    backend = ArgosBackend(folder, work)
    if toy:
        print("No packages installed: the suite's tiny copying models (overhead only).")
    for package in backend.packages():
        size = package.size_bytes() / 1024**2
        print(f"package {package.source}->{package.target}: {size:.0f} MB on disk")

    redis = cache()
    translator = Translator(backend, redis, secret="bench")  # noqa: S106
    rows = [json.loads(line) for line in MESSAGES.read_text("utf-8").splitlines()]
    by_language: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_language[row["lang"]].append(row["text"])

    print(f"\n{'route':<12} {'n':>3} {'first s':>8} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'cached ms':>9} {'ratio':>6} {'ok':>4}")  # fmt: skip
    for language, texts in sorted(by_language.items()):
        path = backend.route(language, "fi")
        if language == "fi" or path is None:
            continue
        measure(translator, language, "->".join(path), texts, redis is not None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of this process: {peak:.0f} MB")


def measure(
    translator: Translator, language: str, route: str, texts: list[str], cached: bool
) -> None:
    prepared = []
    for text in texts:
        values: dict[str, str] = {}
        prepared.append((anonymise(text, {}, values), values))

    seconds, ok = [], 0
    for anonymised, values in prepared:
        began = time.perf_counter()
        result = translator.translate(anonymised, language, "fi", values)
        seconds.append(time.perf_counter() - began)
        ok += result.translated
    again = []
    for anonymised, values in prepared:
        began = time.perf_counter()
        translator.translate(anonymised, language, "fi", values)
        again.append(time.perf_counter() - began)

    first, rest = seconds[0], sorted(seconds[1:]) or seconds
    p50 = statistics.median(rest) * 1000
    p95 = rest[int(len(rest) * 0.95) - 1] * 1000 if len(rest) > 1 else p50
    hit = statistics.median(again) * 1000
    ratio = f"{p50 / hit:.0f}x" if cached and hit else "-"
    print(
        f"{route:<12} {len(texts):>3} {first:>8.2f} {p50:>7.1f} {p95:>7.1f} "
        f"{hit if cached else float('nan'):>9.2f} {ratio:>6} {ok:>4}"
    )


if __name__ == "__main__":
    main()
