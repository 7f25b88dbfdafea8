"""Jobs for one message: answer an inbound text, send an outbound one.

`handle_inbound` runs the conversation and queues the replies; `send_outbound`
hands a reply to its channel. Both are safe to run again for the same id.
"""

from __future__ import annotations

import logging

from rq import get_current_job

from bot.channels import get_channels
from bot.conversation import get_dialogue
from bot.db import UNAVAILABLE_ERRORS, get_db
from bot.errors import PolkuError
from bot.limits import get_limits
from bot.messaging import (
    answer,
    deliver,
    pending_inbound,
    queue_outbound,
    record_inbound_failure,
)
from bot.queue import (
    enqueue_handoff,
    enqueue_question,
    enqueue_translation,
    get_queue,
    release_send,
)
from workers import get_app

logger = logging.getLogger(__name__)


def handle_inbound(message_id: int) -> int:
    """Answer inbound message `message_id`, and older unanswered ones first.

    Each message is answered in its own transaction and its replies queued at
    once. A failure stops the job so that RQ retries it, keeping the order. On
    the job's last try a failing message is given up on (marked failed), the
    later ones are still answered, and the job then fails so that it stays
    visible in RQ's failed registry. An unreachable database is never the
    message's fault: the job fails without giving up on it, and the sweep
    queues the message again once RQ's retries are spent.
    """
    app = get_app()
    settings = app.config["POLKU"]
    final = _final_attempt()
    replies, given_up = 0, []
    with app.app_context():
        db, queue, channels = get_db(), get_queue(), get_channels(app)
        for pending_id in pending_inbound(db, message_id):
            try:
                answered = answer(
                    db,
                    pending_id,
                    channels,
                    get_dialogue(app),
                    settings.secret_key,
                    settings.max_message_chars,
                )
            except UNAVAILABLE_ERRORS:
                logger.warning("message %s: database unavailable; retried", pending_id)
                raise
            except Exception:
                record_inbound_failure(db, pending_id, final=final)
                if not final:
                    raise
                logger.exception("message %s: given up on", pending_id)
                given_up.append(pending_id)
                continue
            queue_outbound(db, queue, answered.reply_ids, settings.retry_intervals)
            if answered.handoff_id is not None and answered.client_id is not None:
                # The handoff job translates the answers itself, then sends.
                enqueue_handoff(
                    queue,
                    answered.handoff_id,
                    answered.client_id,
                    settings.handoff_retry_intervals,
                )
            elif answered.translate and answered.client_id is not None:
                # After the replies: the client hears back before translating.
                intervals = settings.retry_intervals
                enqueue_translation(queue, pending_id, answered.client_id, intervals)
            if answered.question_id is not None and answered.client_id is not None:
                enqueue_question(
                    queue,
                    answered.question_id,
                    answered.client_id,
                    settings.handoff_retry_intervals,
                )
            replies += len(answered.reply_ids)

    if given_up:
        raise PolkuError(f"gave up answering messages {given_up}; see the log")

    return replies


def _final_attempt() -> bool:
    job = get_current_job()

    return job is None or not job.retries_left


def send_outbound(message_id: int) -> None:
    """Send outbound message `message_id`, and any older queued reply first.

    Raises on a retryable failure, so RQ retries with the configured backoff;
    on the last try the message is marked failed and the job stays in RQ's
    failed registry. A reply over a send limit stays queued: the job lets go
    of it, and the sweep queues it again each minute until the limit allows.
    """
    app = get_app()
    with app.app_context():
        channels, gate = get_channels(app), get_limits(app).gate
        final = _final_attempt()
        if deliver(get_db(), message_id, channels, final_attempt=final, gate=gate):
            release_send(get_queue(), message_id)
