"""Import ESCO from the CSV files of the ESCO portal into the local index.

`flask --app wsgi esco import PATH...` reads `occupations_xx.csv`, `skills_xx.csv`,
`ISCOGroups_xx.csv` and `occupationSkillRelations_xx.csv` of any language, merges
languages by concept URI, and can run again with the same or newer files.
"""

from __future__ import annotations

import csv
import logging
import re
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bot.errors import PolkuError
from esco.embeddings import E5Embedder, embed_many
from esco.index import (
    ALTERNATIVE,
    HIDDEN,
    ISCO_GROUP,
    OCCUPATION,
    PREFERRED,
    SKILL,
    connect,
    read_meta,
    write_meta,
)

logger = logging.getLogger(__name__)

FILE_NAME = re.compile(
    r"^(occupations|skills|ISCOGroups|occupationSkillRelations)_([a-z]{2,3})\.csv$"
)
VERSION = re.compile(r"\bv(\d+(?:\.\d+)+)\b")
URI = re.compile(r"^http://data\.europa\.eu/esco/(occupation|skill|isco)/[\w.-]+$")
KINDS = {"occupations": OCCUPATION, "skills": SKILL, "ISCOGroups": ISCO_GROUP}
URI_PATHS = {OCCUPATION: "occupation", SKILL: "skill", ISCO_GROUP: "isco"}
REQUIRED = {
    "occupations": ("conceptUri", "preferredLabel"),
    "skills": ("conceptUri", "preferredLabel"),
    "ISCOGroups": ("conceptUri", "code", "preferredLabel"),
    "occupationSkillRelations": ("occupationUri", "relationType", "skillUri"),
}
# The columns of the portal's v1.1 files, in order; the importer reads them by
# name and needs only those in REQUIRED, so newer files with more columns work.
PORTAL_COLUMNS = {
    "occupations": [
        "conceptType", "conceptUri", "iscoGroup", "preferredLabel", "altLabels",
        "hiddenLabels", "status", "modifiedDate", "regulatedProfessionNote",
        "scopeNote", "definition", "inScheme", "description", "code",
    ],
    "skills": [
        "conceptType", "conceptUri", "skillType", "reuseLevel", "preferredLabel",
        "altLabels", "hiddenLabels", "status", "modifiedDate", "scopeNote",
        "definition", "inScheme", "description",
    ],
    "ISCOGroups": [
        "conceptType", "conceptUri", "code", "preferredLabel", "status",
        "altLabels", "inScheme", "description",
    ],
    "occupationSkillRelations": [
        "occupationUri", "relationType", "skillType", "skillUri",
    ],
}  # fmt: skip
RELATION_TYPES = frozenset({"essential", "optional"})
# The largest ESCO cells (descriptions) are a few kB; a runaway quote is not.
FIELD_LIMIT = 1_000_000

# Called with the file, the bytes read and the file's size.
Progress = Callable[[Path, int, int], None]


class EscoImportError(PolkuError):
    """Nothing could be imported: no ESCO file among the paths."""


@dataclass(frozen=True)
class Problem:
    """A row (or a whole file) that was not imported, and why."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


@dataclass
class ImportReport:
    files: list[Path] = field(default_factory=list)
    concepts: int = 0
    labels: int = 0
    relations: int = 0
    problems: list[Problem] = field(default_factory=list)
    version: str = "unknown"
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class EscoFile:
    path: Path
    table: str
    language: str


def find_files(paths: Iterable[Path]) -> tuple[list[EscoFile], list[Problem]]:
    """Return the ESCO CSV files among `paths` (folders are searched), in the
    order they must be read: concepts before the relations between them."""
    found, problems = [], []
    for path in paths:
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*.csv") if p.is_file())
        elif path.is_file():
            candidates = [path]
        else:
            problems.append(Problem(path, 0, "no such file or folder"))
            continue
        for candidate in candidates:
            match = FILE_NAME.match(candidate.name)
            if match:
                found.append(EscoFile(candidate, match[1], match[2]))
            elif not path.is_dir():
                problems.append(
                    Problem(candidate, 0, "not an ESCO file name (occupations_fi.csv…)")
                )
    order = ["ISCOGroups", "occupations", "skills", "occupationSkillRelations"]
    found.sort(key=lambda f: (order.index(f.table), f.language, str(f.path)))

    return found, problems


def version_from(paths: Iterable[Path]) -> str | None:
    """Read the ESCO version from the portal's folder name ("… - v1.1.1 - …")."""
    for path in paths:
        for part in (path.resolve(), *path.resolve().parents):
            match = VERSION.search(part.name)
            if match:
                return match[1]

    return None


def import_paths(
    index: Path,
    paths: list[Path],
    *,
    version: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the ESCO files found in `paths` into the index at `index`.

    Each concept's labels in a file's language replace those it had, so the
    same files imported twice leave the same index. A malformed row is
    reported with its file and line, and the rest of the file goes on.
    """
    files, problems = find_files(paths)
    if not files:
        raise EscoImportError(
            "no ESCO CSV files found in "
            + ", ".join(str(p) for p in paths)
            + "; give the folder of the CSV package downloaded from the ESCO portal"
        )
    report = ImportReport(files=[f.path for f in files], problems=problems)
    csv.field_size_limit(min(FIELD_LIMIT, sys.maxsize))
    with connect(index) as connection:
        for esco_file in files:
            _import_file(connection, esco_file, report, progress)
        meta = read_meta(connection)
        languages = {row[0] for row in connection.execute("SELECT language FROM label")}
        report.version = (
            version or version_from(paths) or meta.get("version") or "unknown"
        )
        report.languages = tuple(sorted(languages))
        write_meta(
            connection,
            version=report.version,
            languages=",".join(report.languages),
            imported_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
    logger.info(
        "esco: imported %d files, %d concepts, %d relations, %d problems",
        len(files),
        report.concepts,
        report.relations,
        len(report.problems),
    )

    return report


def _import_file(
    connection: sqlite3.Connection,
    esco_file: EscoFile,
    report: ImportReport,
    progress: Progress | None,
) -> None:
    rows = _rows(esco_file, report, progress)
    if esco_file.table == "occupationSkillRelations":
        _import_relations(connection, esco_file, rows, report)
    else:
        _import_concepts(connection, esco_file, rows, report)


def _rows(
    esco_file: EscoFile, report: ImportReport, progress: Progress | None
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line, row) for each record; report what cannot be read."""
    path = esco_file.path
    size = path.stat().st_size
    done = 0

    def lines(handle: Iterable[str]) -> Iterator[str]:
        nonlocal done
        for number, line in enumerate(handle, start=1):
            done += len(line.encode("utf-8", "replace"))
            if progress and number % 2000 == 0:
                progress(path, done, size)
            yield line

    # Broken UTF-8 becomes U+FFFD and its row is reported, not the whole file.
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.DictReader(lines(handle))
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED[esco_file.table] if c not in header]
        if missing:
            message = f"missing column(s) {', '.join(missing)}; not an ESCO file?"
            report.problems.append(Problem(path, 1, message))
            return
        start = reader.line_num + 1
        try:
            for row in reader:
                if None in row:
                    report.problems.append(Problem(path, start, "too many fields"))
                elif "\ufffd" in "".join(v or "" for v in row.values()):
                    report.problems.append(Problem(path, start, "not valid UTF-8"))
                else:
                    yield start, row
                start = reader.line_num + 1
        except csv.Error as exc:
            message = f"unreadable CSV ({exc}); the rest of the file is skipped"
            report.problems.append(Problem(path, start, message))
    if progress:
        progress(path, size, size)


def _labels(cell: str | None) -> list[str]:
    """Split an altLabels or hiddenLabels cell: one label per line."""
    return [label.strip() for label in (cell or "").splitlines() if label.strip()]


def _import_concepts(
    connection: sqlite3.Connection,
    esco_file: EscoFile,
    rows: Iterable[tuple[int, dict[str, str]]],
    report: ImportReport,
) -> None:
    kind, language = KINDS[esco_file.table], esco_file.language
    for line, row in rows:
        uri = (row.get("conceptUri") or "").strip()
        preferred = (row.get("preferredLabel") or "").strip()
        problem = _check_concept(kind, uri, preferred, row)
        if problem:
            report.problems.append(Problem(esco_file.path, line, problem))
            continue
        code = (row.get("code") or "").strip() or None
        connection.execute(
            "INSERT INTO concept (uri, kind, code, isco_group, skill_type) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (uri) DO UPDATE SET "
            "kind = excluded.kind, code = coalesce(excluded.code, code), "
            "isco_group = coalesce(excluded.isco_group, isco_group), "
            "skill_type = coalesce(excluded.skill_type, skill_type)",
            (
                uri,
                kind,
                code,
                (row.get("iscoGroup") or "").strip() or None,
                (row.get("skillType") or "").strip() or None,
            ),
        )
        labels = {(PREFERRED, preferred)}
        labels.update((ALTERNATIVE, text) for text in _labels(row.get("altLabels")))
        labels.update((HIDDEN, text) for text in _labels(row.get("hiddenLabels")))
        connection.execute(
            "DELETE FROM label WHERE uri = ? AND language = ?", (uri, language)
        )
        connection.executemany(
            "INSERT OR IGNORE INTO label (uri, language, role, text) "
            "VALUES (?, ?, ?, ?)",
            [(uri, language, role, text) for role, text in labels],
        )
        report.concepts += 1
        report.labels += len(labels)


def _check_concept(
    kind: str, uri: str, preferred: str, row: dict[str, str]
) -> str | None:
    match = URI.match(uri)
    if not match or match[1] != URI_PATHS[kind]:
        return f"conceptUri {uri[:80]!r} is not an ESCO {kind.replace('_', ' ')} URI"
    if not preferred:
        return "preferredLabel is empty"
    if kind == ISCO_GROUP and not (row.get("code") or "").strip().isdigit():
        return f"ISCO code {(row.get('code') or '')[:20]!r} is not a number"

    return None


def _import_relations(
    connection: sqlite3.Connection,
    esco_file: EscoFile,
    rows: Iterable[tuple[int, dict[str, str]]],
    report: ImportReport,
) -> None:
    known = {
        uri: kind for uri, kind in connection.execute("SELECT uri, kind FROM concept")
    }
    unknown = 0
    for line, row in rows:
        occupation = (row.get("occupationUri") or "").strip()
        skill = (row.get("skillUri") or "").strip()
        relation = (row.get("relationType") or "").strip()
        if relation not in RELATION_TYPES:
            problem = f"relationType {relation[:20]!r} is not essential or optional"
            report.problems.append(Problem(esco_file.path, line, problem))
            continue
        if known.get(occupation) != OCCUPATION or known.get(skill) != SKILL:
            unknown += 1
            continue
        connection.execute(
            "INSERT INTO relation (occupation_uri, skill_uri, relation) "
            "VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET relation = excluded.relation",
            (occupation, skill, relation),
        )
        report.relations += 1
    if unknown:
        message = (
            f"{unknown} relation(s) name an occupation or skill that is not "
            "imported; import occupations_xx.csv and skills_xx.csv with it"
        )
        report.problems.append(Problem(esco_file.path, 0, message))


def embed_labels(
    index: Path,
    embedder: E5Embedder,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Embed the preferred labels that have no vector yet; return how many.

    Vectors are kept by label text, so an import of newer files embeds only
    the labels that changed.
    """
    with connect(index) as connection:
        connection.execute("DELETE FROM vector WHERE model != ?", (embedder.name,))
        texts = [
            row[0]
            for row in connection.execute(
                "SELECT DISTINCT l.text FROM label l JOIN concept c ON c.uri = l.uri "
                "WHERE l.role = ? AND c.kind IN (?, ?) AND l.text NOT IN "
                "(SELECT text FROM vector) ORDER BY l.text",
                (PREFERRED, OCCUPATION, SKILL),
            )
        ]
    if not texts:
        return 0
    vectors = embed_many(embedder, texts, progress).astype(np.float16)
    with connect(index) as connection:
        connection.executemany(
            "INSERT OR REPLACE INTO vector (text, model, embedding) VALUES (?, ?, ?)",
            [
                (text, embedder.name, vector.tobytes())
                for text, vector in zip(texts, vectors, strict=True)
            ],
        )
        write_meta(connection, embedding_model=embedder.name)

    return len(texts)
