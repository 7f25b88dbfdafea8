"""The local ESCO index: one SQLite file under instance/, written by `esco import`.

Concepts (occupations, skills, ISCO groups) with their labels in every imported
language, the occupation-skill relations, label embeddings, and what was
imported: the ESCO version and languages. The matcher reads it whole.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

OCCUPATION, SKILL, ISCO_GROUP = "occupation", "skill", "isco_group"
PREFERRED, ALTERNATIVE, HIDDEN = "preferred", "alternative", "hidden"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS concept (
    uri TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    code TEXT,
    isco_group TEXT,
    skill_type TEXT
);
CREATE TABLE IF NOT EXISTS label (
    uri TEXT NOT NULL,
    language TEXT NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (uri, language, role, text)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS relation (
    occupation_uri TEXT NOT NULL,
    skill_uri TEXT NOT NULL,
    relation TEXT NOT NULL,
    PRIMARY KEY (occupation_uri, skill_uri)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vector (
    text TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    embedding BLOB NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class IndexStatus:
    """What an index holds, for `esco status` and the handoff."""

    path: Path
    version: str
    languages: tuple[str, ...]
    occupations: int
    skills: int
    relations: int
    embedded: int
    imported_at: str


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """Open (and create) the index; commit on success, roll back on error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.executescript(SCHEMA)
        with connection:
            yield connection
    finally:
        connection.close()


def read_meta(connection: sqlite3.Connection) -> dict[str, str]:
    return dict(connection.execute("SELECT key, value FROM meta"))


def write_meta(connection: sqlite3.Connection, **values: str) -> None:
    connection.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        values.items(),
    )


def index_status(path: Path) -> IndexStatus | None:
    """Return what the index at `path` holds, or None if nothing was imported."""
    if not path.exists():
        return None
    with connect(path) as connection:
        meta = read_meta(connection)
        counts = dict(
            connection.execute("SELECT kind, count(*) FROM concept GROUP BY kind")
        )
        relations = connection.execute("SELECT count(*) FROM relation").fetchone()[0]
        embedded = connection.execute("SELECT count(*) FROM vector").fetchone()[0]
    if not counts.get(OCCUPATION) and not counts.get(SKILL):
        return None

    return IndexStatus(
        path=path,
        version=meta.get("version", "unknown"),
        languages=tuple(meta.get("languages", "").split(",")) if meta else (),
        occupations=counts.get(OCCUPATION, 0),
        skills=counts.get(SKILL, 0),
        relations=relations,
        embedded=embedded,
        imported_at=meta.get("imported_at", ""),
    )
