"""Measure the course scheduler: a week of lesson runs for many participants.

Run: python bench/course.py [PARTICIPANTS] [DATABASE_URL]; default 1000
participants in ten groups on a fresh SQLite file. The scheduler's job runs
every 15 minutes of a simulated week (672 runs, the real one runs every two
minutes); the figures are the time of a run with nothing due, of a run that
writes a lesson for every participant, and the messages written. Nothing is
sent: channels store messages, the send jobs are not queued.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import create_app  # noqa: E402
from bot.channels import get_channels, get_templates  # noqa: E402
from bot.conversation import get_dialogue  # noqa: E402
from bot.course import create_group, enrol_number, find_group, write_due  # noqa: E402
from bot.db import get_db  # noqa: E402
from bot.schema import upgrade  # noqa: E402

HELSINKI = ZoneInfo("Europe/Helsinki")
MONDAY = dt.date(2027, 3, 1)
LANGUAGES = ("uk", "ar", "so", "ru", "fa", "en", "sv", "et", "fi")


def main() -> None:
    participants = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    folder = Path(tempfile.mkdtemp(prefix="polku-bench-course-"))
    url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{folder / 'bench.db'}"
    os.environ.setdefault("POLKU_LOG_LEVEL", "WARNING")
    app = create_app(
        {
            "database_url": url,
            "secret_key": "bench-secret-key-bench-secret-key",
            "instance_path": folder,
            "log_level": "WARNING",
        }
    )
    db = get_db(app)
    upgrade(db.engine)
    dialogue = get_dialogue(app)
    course = dialogue.flows.course
    channels, templates = get_channels(app), get_templates(app)

    began = time.perf_counter()
    with db.transaction() as session:
        for number in range(10):
            create_group(
                session,
                code=f"BENCH{number}",
                name=f"Bench {number}",
                team="integration",
                teacher_email="opettaja@example.fi",
                days="mon,wed,fri",
                time="17:00",
                start=MONDAY,
            )
    with db.transaction() as session:
        for person in range(participants):
            enrol_number(
                session,
                secret_key=app.config["POLKU"].secret_key,
                channel="sms",
                number=f"+35840{person:07d}",
                language=LANGUAGES[person % len(LANGUAGES)],
                group=find_group(session, f"BENCH{person % 10}"),
                dialogue=dialogue,
                channels=channels,
                templates=templates,
                by="bench",
                now=dt.datetime.combine(MONDAY, dt.time(9), HELSINKI)
                - dt.timedelta(days=1),
            )
    print(
        f"{participants} participants enrolled in {time.perf_counter() - began:.1f} s"
    )

    idle, busy, written = [], [], 0
    moment = dt.datetime.combine(MONDAY, dt.time(0), HELSINKI)
    while moment < dt.datetime.combine(
        MONDAY + dt.timedelta(days=7), dt.time(0), HELSINKI
    ):
        start = time.perf_counter()
        done = write_due(db, course, channels, templates, moment)
        seconds = time.perf_counter() - start
        (busy if done.message_ids else idle).append(seconds)
        written += len(done.message_ids)
        moment += dt.timedelta(minutes=15)

    print(f"database: {db.engine.dialect.name}; {len(idle) + len(busy)} runs")
    print(
        f"run with nothing due: median {statistics.median(idle) * 1000:.1f} ms, "
        f"max {max(idle) * 1000:.1f} ms"
    )
    if busy:
        print(
            f"run that writes: median {statistics.median(busy):.2f} s over "
            f"{len(busy)} runs, {written} messages "
            f"({written / max(sum(busy), 1e-9):.0f} messages/s)"
        )


if __name__ == "__main__":
    main()
