"""Retention: delete every record past the period its record class allows.

Run by the scheduler every hour. Periods come from bot/records.yaml. Redis
holds only ids and expires its own job data sooner (results in minutes,
failed jobs in 30 days), so the database is where deletion matters.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, or_

from bot.db import Database
from bot.models import (
    AuditEntry,
    Client,
    Conversation,
    Enrolment,
    Handoff,
    Message,
    ModelCall,
    utcnow,
)
from bot.records import record_classes

logger = logging.getLogger(__name__)

# A web chat client who erased their data keeps the row only until the page
# has had time to fetch the confirmation.
ERASING_GRACE = timedelta(hours=1)


def apply_retention(db: Database, now: datetime | None = None) -> dict[str, int]:
    """Delete what has outlived its record class; return the counts per class."""
    now = now or utcnow()
    classes = record_classes()
    statements = {
        "message": delete(Message).where(
            Message.created_at < now - classes["message"].retention
        ),
        "interview_answers": delete(Conversation).where(
            Conversation.updated_at < now - classes["interview_answers"].retention
        ),
        "client": delete(Client).where(
            or_(
                Client.last_seen_at < now - classes["client"].retention,
                Client.erasing_at < now - ERASING_GRACE,
            )
        ),
        "audit_entry": delete(AuditEntry).where(
            AuditEntry.at < now - classes["audit_entry"].retention
        ),
        "model_call": delete(ModelCall).where(
            ModelCall.at < now - classes["model_call"].retention
        ),
        "handoff": delete(Handoff).where(
            Handoff.created_at < now - classes["handoff"].retention
        ),
        # Deliveries, answers and questions go with their enrolment.
        "lesson_progress": delete(Enrolment).where(
            Enrolment.updated_at < now - classes["lesson_progress"].retention
        ),
    }
    counts = {}
    with db.transaction() as session:
        for name, statement in statements.items():
            result = session.execute(
                statement.execution_options(synchronize_session=False)
            )
            counts[name] = result.rowcount or 0
    if any(counts.values()):
        logger.info("retention: deleted %s", counts)

    return counts
