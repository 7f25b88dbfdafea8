"""Record classes: how long each kind of record is kept, read from bot/records.yaml.

The retention job and the erasure command take their periods from here, and
PRIVACY.md describes the same classes for people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path

import yaml

from bot.errors import ConfigError

RECORDS_FILE = Path(__file__).parent / "records.yaml"
REQUIRED = ("title", "retention_days", "publicity", "personal_data", "lawful_basis")
CLASSES = (
    "message",
    "interview_answers",
    "client",
    "handoff",
    "lesson_progress",
    "audit_entry",
    "model_call",
)


@dataclass(frozen=True)
class RecordClass:
    name: str
    title: str
    retention: timedelta
    publicity: str
    personal_data: str
    lawful_basis: str


@cache
def record_classes(path: Path = RECORDS_FILE) -> dict[str, RecordClass]:
    """Read and check the record classes; raise ConfigError naming what is wrong."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")).get("record_classes", {})
    classes = {}
    for name in CLASSES:
        entry = raw.get(name)
        if not isinstance(entry, dict):
            raise ConfigError(f"RECORDS {path}: record class {name!r} is missing")
        missing = [key for key in REQUIRED if key not in entry]
        days = entry.get("retention_days")
        if missing or not isinstance(days, int) or days < 1:
            raise ConfigError(
                f"RECORDS {path}: record class {name!r} needs {', '.join(REQUIRED)}, "
                "with retention_days a whole number of days of at least 1"
            )
        classes[name] = RecordClass(
            name=name,
            title=str(entry["title"]),
            retention=timedelta(days=days),
            publicity=str(entry["publicity"]),
            personal_data=str(entry["personal_data"]),
            lawful_basis=str(entry["lawful_basis"]),
        )

    return classes
