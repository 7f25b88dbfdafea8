"""Periodic jobs: re-queue what is still waiting, remind, delete expired records.

Redis may lose queued jobs (a restart, an outage while a webhook ran); the
database never does. The sweep finds inbound messages not yet answered, replies
not yet sent and handoffs not yet e-mailed, and queues those whose job Redis no
longer knows of.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy import select

from bot.channels import get_channels
from bot.conversation import get_dialogue
from bot.db import get_db
from bot.handoff import PENDING, SENDING, STALE_CLAIM
from bot.health import record_sweep
from bot.messaging import (
    INBOUND,
    OUTBOUND,
    QUEUED,
    RECEIVED,
    TRANSLATING,
    queue_outbound,
)
from bot.messaging import SENDING as REPLY_SENDING
from bot.models import CourseQuestion, Enrolment, Handoff, Message, utcnow
from bot.queue import (
    enqueue_handoff,
    enqueue_inbound,
    enqueue_question,
    enqueue_reply,
    enqueue_send,
    get_queue,
)
from bot.reminders import remind_idle_clients
from bot.retention import apply_retention
from workers import get_app

logger = logging.getLogger(__name__)

# Younger messages are probably still on their way through the queue.
GRACE = timedelta(seconds=60)
BATCH = 500


def requeue_pending(grace_seconds: int | None = None) -> int:
    """Queue again the messages that waited longer than the grace period."""
    app = get_app()
    grace = GRACE if grace_seconds is None else timedelta(seconds=grace_seconds)
    cutoff = utcnow() - grace
    # A reply left "sending" by a worker that died mid-send (its retries spent)
    # is sent again once it is stale; younger, its job may still be at it.
    stale = min(cutoff, utcnow() - STALE_CLAIM)
    intervals = app.config["POLKU"].retry_intervals
    with app.app_context():
        queue = get_queue()
        with get_db().session() as session:
            query = (
                select(Message.id, Message.client_id, Message.direction, Message.status)
                .where(
                    Message.created_at <= cutoff,
                    (
                        (Message.direction == INBOUND) & (Message.status == RECEIVED)
                        | (Message.direction == OUTBOUND)
                        & Message.status.in_((QUEUED, TRANSLATING))
                        | (Message.direction == OUTBOUND)
                        & (Message.status == REPLY_SENDING)
                        & (Message.created_at <= stale)
                    ),
                )
                .order_by(Message.id)
                .limit(BATCH)
            )
            waiting = session.execute(query).all()

        for message_id, client_id, direction, status in waiting:
            if direction == INBOUND:
                enqueue_inbound(queue, message_id, client_id, intervals)
            elif status == TRANSLATING:
                enqueue_reply(queue, message_id, client_id, intervals)
            else:
                enqueue_send(queue, message_id, client_id, intervals)
    if waiting:
        logger.info("sweep: queued %d waiting messages again", len(waiting))
    requeued = len(waiting) + requeue_handoffs(app, cutoff)
    requeued += requeue_questions(app, cutoff)
    try:
        # For /metrics: an operator alerts when the sweep stops running.
        record_sweep(queue.connection)
    except RedisError:
        logger.warning("sweep: could not note the time it ran", exc_info=True)

    return requeued


def requeue_handoffs(app: Flask, cutoff: datetime) -> int:
    """Queue again the handoffs whose e-mail waits with no job behind it.

    A handoff whose job is alive (waiting for its next retry) is left alone by
    the queue's marker; a claim left by a worker that died while sending is
    taken over once it is stale.
    """
    intervals = app.config["POLKU"].handoff_retry_intervals
    stale = utcnow() - STALE_CLAIM
    with app.app_context():
        queue = get_queue()
        with get_db().session() as session:
            query = (
                select(Handoff.id, Handoff.client_id)
                .where(
                    Handoff.created_at <= cutoff,
                    Handoff.client_id.is_not(None),
                    (Handoff.status == PENDING)
                    | (Handoff.status == SENDING) & (Handoff.claimed_at <= stale),
                )
                .order_by(Handoff.id)
                .limit(BATCH)
            )
            waiting = session.execute(query).all()
        for handoff_id, client_id in waiting:
            enqueue_handoff(queue, handoff_id, client_id, intervals)
    if waiting:
        logger.info("sweep: queued %d waiting handoffs again", len(waiting))

    return len(waiting)


def requeue_questions(app: Flask, cutoff: datetime) -> int:
    """Queue again the course questions whose e-mail waits with no job behind it."""
    intervals = app.config["POLKU"].handoff_retry_intervals
    stale = utcnow() - STALE_CLAIM
    with app.app_context():
        queue = get_queue()
        with get_db().session() as session:
            query = (
                select(CourseQuestion.id, Enrolment.client_id)
                .join(Enrolment, Enrolment.id == CourseQuestion.enrolment_id)
                .where(
                    CourseQuestion.created_at <= cutoff,
                    (CourseQuestion.status == PENDING)
                    | (CourseQuestion.status == SENDING)
                    & (CourseQuestion.claimed_at <= stale),
                )
                .order_by(CourseQuestion.id)
                .limit(BATCH)
            )
            waiting = session.execute(query).all()
        for question_id, client_id in waiting:
            enqueue_question(queue, question_id, client_id, intervals)
    if waiting:
        logger.info("sweep: queued %d waiting course questions again", len(waiting))

    return len(waiting)


def send_reminders() -> int:
    """Remind clients who left the interview unfinished; return how many."""
    app = get_app()
    settings = app.config["POLKU"]
    with app.app_context():
        db = get_db()
        reply_ids = remind_idle_clients(
            db,
            get_dialogue(app),
            get_channels(app),
            after=timedelta(hours=settings.reminder_after_hours),
        )
        queue_outbound(db, get_queue(), reply_ids, settings.retry_intervals)

    return len(reply_ids)


def delete_expired() -> dict[str, int]:
    """Delete every record past its retention period (bot/records.yaml)."""
    app = get_app()
    with app.app_context():
        return apply_retention(get_db())
