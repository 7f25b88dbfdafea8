"""The audit log: who used or disclosed whose personal data, when and why.

Written in the same transaction as the use it records. An entry names the
client only by their pseudonymous reference and never holds the data itself.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from bot.models import AuditEntry

logger = logging.getLogger(__name__)

ERASURE, DATA_SUMMARY = "erasure", "data_summary"
# A case passed to counsellors (the e-mail), and a counsellor opening one.
HANDOFF, CASE_VIEW = "handoff", "case_view"
CASE_TAKEN, CASE_REPLY = "case_taken", "case_reply"
# A course group's progress taken out of Polku (CSV).
EXPORT = "export"


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    record_class: str,
    reason: str,
) -> AuditEntry:
    """Add an audit entry: `actor` did `action` on `subject`'s `record_class`."""
    entry = AuditEntry(
        actor=actor,
        action=action,
        subject=subject,
        record_class=record_class,
        reason=reason,
    )
    session.add(entry)
    logger.info("audit: %s by %s on client %s", action, actor, subject)

    return entry
