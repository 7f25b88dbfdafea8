"""The job queue between the webhooks and the workers: Redis and RQ.

Only ids travel through Redis. Jobs of one client run one at a time (RQ's
per-key concurrency limit), so a client's messages are handled in order while
different clients are served in parallel.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.rate_limit import RateLimit

if TYPE_CHECKING:
    from flask import Flask

    from bot.settings import Settings

logger = logging.getLogger(__name__)

QUEUE_NAME = "polku"
# Inbound handling retries a few times for database or Redis hiccups; sends
# follow SEND_RETRY_INTERVALS. A job that still fails stays in RQ's failed
# registry for a month so the operator can requeue it.
INBOUND_RETRY = Retry(max=3, interval=[5, 30, 120])
FAILURE_TTL = 30 * 24 * 3600
JOB_TIMEOUT = 120
MARKER_TTL = 24 * 3600


def redis_url(settings: Settings) -> str:
    """Return the configured Redis URL, or the embedded server's socket."""
    if settings.redis_url:
        return settings.redis_url

    return f"unix://{settings.embedded_redis_socket}"


def init_app(app: Flask) -> None:
    settings = app.config["POLKU"]
    if settings.uses_embedded_redis:
        from bot.embedded_redis import ensure_embedded_redis

        ensure_embedded_redis(settings)
    connection = Redis.from_url(
        redis_url(settings), socket_connect_timeout=2, socket_timeout=5
    )
    app.extensions["polku.redis"] = connection
    app.extensions["polku.queue"] = Queue(QUEUE_NAME, connection=connection)


def get_queue(app: Flask | None = None) -> Queue:
    if app is None:
        from flask import current_app

        app = current_app

    return app.extensions["polku.queue"]


def enqueue_inbound(
    queue: Queue, message_id: int, client_id: int, *, again: bool = False
) -> bool:
    """Queue handling of inbound message `message_id`; False if Redis is down.

    A retried webhook finds a marker in Redis and queues nothing more; the
    marker goes when Redis loses its data, which is when queueing again is
    right. The sweep passes `again` to queue regardless. Best effort: the
    message is already stored, so a failure is logged and not raised.
    """
    marker = f"polku:queued:in:{message_id}"
    try:
        if not queue.connection.set(marker, 1, nx=True, ex=MARKER_TTL) and not again:
            return True
        queue.enqueue(
            "workers.messages.handle_inbound",
            message_id,
            rate_limit=RateLimit(f"polku-client-{client_id}", 1),
            retry=INBOUND_RETRY,
            job_timeout=JOB_TIMEOUT,
            failure_ttl=FAILURE_TTL,
            description=f"handle inbound message {message_id}",
        )
    except RedisError:
        logger.warning("message %s: could not queue it", message_id, exc_info=True)
        return False

    return True


def enqueue_send(
    queue: Queue, message_id: int, client_id: int, intervals: tuple[int, ...]
) -> bool:
    """Queue sending of outbound message `message_id`; False if Redis is down.

    Best effort like `enqueue_inbound`: the sweep finds queued replies.
    """
    try:
        queue.enqueue(
            "workers.messages.send_outbound",
            message_id,
            rate_limit=RateLimit(f"polku-send-{client_id}", 1),
            retry=Retry(max=len(intervals), interval=list(intervals)),
            job_timeout=JOB_TIMEOUT,
            failure_ttl=FAILURE_TTL,
            description=f"send outbound message {message_id}",
        )
    except RedisError:
        logger.warning("message %s: could not queue it", message_id, exc_info=True)
        return False

    return True
