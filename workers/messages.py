"""Jobs for one message: answer an inbound text, send an outbound one.

`handle_inbound` runs the conversation and queues the replies; `send_outbound`
hands a reply to its channel. Both are safe to run again for the same id.
"""

from __future__ import annotations

from rq import get_current_job

from bot.channels import get_channels
from bot.conversation import Commands
from bot.db import get_db
from bot.messaging import deliver, process_inbound, queue_outbound
from bot.queue import get_queue
from workers import get_app


def handle_inbound(message_id: int) -> int:
    """Answer inbound message `message_id`, queue the replies, return their count."""
    app = get_app()
    settings = app.config["POLKU"]
    with app.app_context():
        db = get_db()
        reply_ids = process_inbound(
            db,
            message_id,
            get_channels(app),
            commands=Commands.load(),
            contact=settings.service_contact,
        )
        queue_outbound(db, get_queue(), reply_ids, settings.send_retry_intervals)

    return len(reply_ids)


def send_outbound(message_id: int) -> None:
    """Send outbound message `message_id`, and any older queued reply first.

    Raises on a retryable failure, so RQ retries with the configured backoff;
    on the last try the message is marked failed and the job stays in RQ's
    failed registry.
    """
    app = get_app()
    job = get_current_job()
    final_attempt = job is None or not job.retries_left
    with app.app_context():
        deliver(get_db(), message_id, get_channels(app), final_attempt=final_attempt)
