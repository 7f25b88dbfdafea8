"""Reminders: one nudge to a client who left the interview unfinished.

Run by the scheduler every few minutes. A reminder is written like any reply
(the current question again), goes out once per interview, never to a client
who opted out, and only in the daytime in Finland.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels import Channel
from bot.conversation import HELSINKI, INTERVIEW, Dialogue
from bot.db import Database
from bot.messaging import INBOUND, RECEIVED, write_replies
from bot.models import Client, Conversation, Message, utcnow
from flows import engine
from translations import text

logger = logging.getLogger(__name__)

# Local hours in which a reminder may be sent: 9:00 to 19:59.
DAYTIME = range(9, 20)
BATCH = 200


def remind_idle_clients(
    db: Database,
    dialogue: Dialogue,
    channels: dict[str, Channel],
    *,
    after: timedelta,
    now: datetime | None = None,
) -> list[int]:
    """Write a reminder to each client idle longer than `after`; return the message ids.

    Outside the daytime it writes nothing; the next run after 9:00 catches up.
    """
    now = now or utcnow()
    if now.astimezone(HELSINKI).hour not in DAYTIME:
        return []

    flow = dialogue.flows.interview
    query = (
        select(Conversation)
        .where(
            Conversation.stage == INTERVIEW,
            Conversation.ended_at.is_(None),
            Conversation.updated_at <= now - after,
        )
        .order_by(Conversation.id)
        .limit(BATCH)
    )
    written: list[int] = []
    with db.transaction() as session:
        for conversation in session.scalars(query):
            client = session.get(Client, conversation.client_id)
            state = dict(conversation.state or {})
            interview = state.get("interview") or {}
            if client is None or client.opted_out or state.get("reminded_at"):
                continue
            if interview.get("status") != engine.ACTIVE or _has_unanswered(
                session, client
            ):
                continue
            reminder = text("flow.reminder", client.language)
            question = engine.current_question(flow, interview, client.language)
            replies = write_replies(
                session, client, conversation, [f"{reminder}\n\n{question}"], channels
            )
            conversation.state = {**state, "reminded_at": now.isoformat()}
            written.extend(reply.id for reply in replies)
            logger.info("conversation %s: reminder written", conversation.id)

    return written


def _has_unanswered(session: Session, client: Client) -> bool:
    query = select(Message.id).where(
        Message.client_id == client.id,
        Message.direction == INBOUND,
        Message.status == RECEIVED,
    )

    return session.scalars(query.limit(1)).first() is not None
