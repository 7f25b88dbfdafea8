"""The job queue between the webhooks and the workers: Redis and RQ.

Only ids travel through Redis. Jobs of one client run one at a time (RQ's
per-key concurrency limit), so a client's messages are handled in order while
different clients are served in parallel.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, Worker
from rq.job import Job
from rq.rate_limit import RateLimit
from rq.utils import now

if TYPE_CHECKING:
    from flask import Flask

    from bot.settings import Settings

logger = logging.getLogger(__name__)

QUEUE_NAME = "polku"
# Jobs are retried after RETRY_INTERVALS; one that still fails stays in RQ's
# failed registry for a month so the operator can requeue it.
FAILURE_TTL = 30 * 24 * 3600
JOB_TIMEOUT = 120
MARKER_MARGIN = 300
# Seconds a worker's registration lives without a heartbeat; idle, it reports
# every WORKER_TTL - 15 s (RQ's default of 420 would leave /readyz in doubt).
WORKER_TTL = 60
# Seconds between a worker's maintenance runs (RQ's default is 600): it hands a
# dead worker's job back for a retry once its heartbeat lapses (90 s), and starts
# RQ's scheduler again if a Redis outage ended it, so that retries run.
MAINTENANCE_INTERVAL = 60

_connecting = threading.Lock()


def job_function(job: Job) -> str:
    """Name a job by its function (handle_inbound), for metrics: never its id."""
    module, _, name = (job.func_name or "").rpartition(".")

    return name if module.startswith("workers") and name.isidentifier() else "other"


def redis_url(settings: Settings) -> str:
    """Return the configured Redis URL, or the embedded server's socket."""
    if settings.redis_url:
        return settings.redis_url

    return f"unix://{settings.embedded_redis_socket}"


def get_queue(app: Flask | None = None) -> Queue:
    """Return the app's queue, connecting (and starting the embedded Redis) once.

    Lazy, so that commands that never queue anything (chat, flows check,
    db upgrade) start no Redis.
    """
    if app is None:
        from flask import current_app

        app = current_app._get_current_object()  # type: ignore[attr-defined]
    queue = app.extensions.get("polku.queue")
    if queue is None:
        with _connecting:
            queue = app.extensions.get("polku.queue") or _connect(app)

    return queue


def _connect(app: Flask) -> Queue:
    settings = app.config["POLKU"]
    if settings.uses_embedded_redis:
        from bot.embedded_redis import ensure_embedded_redis

        ensure_embedded_redis(settings)
    connection = Redis.from_url(
        redis_url(settings), socket_connect_timeout=2, socket_timeout=5
    )
    queue = Queue(QUEUE_NAME, connection=connection)
    app.extensions["polku.queue"] = queue

    return queue


def enqueue_inbound(
    queue: Queue, message_id: int, client_id: int, intervals: tuple[int, ...]
) -> bool:
    """Queue handling of inbound message `message_id`; False if Redis is down.

    Best effort: the message is already stored and the sweep queues it again,
    so a failure is logged, not raised.
    """
    return _enqueue(
        queue,
        "workers.messages.handle_inbound",
        message_id,
        f"polku-client-{client_id}",
        intervals,
        f"handle inbound message {message_id}",
    )


def enqueue_send(
    queue: Queue, message_id: int, client_id: int, intervals: tuple[int, ...]
) -> bool:
    """Queue sending of outbound message `message_id`; False if Redis is down.

    Best effort like `enqueue_inbound`.
    """
    return _enqueue(
        queue,
        "workers.messages.send_outbound",
        message_id,
        f"polku-send-{client_id}",
        intervals,
        f"send outbound message {message_id}",
    )


def release_send(queue: Queue, message_id: int) -> None:
    """Forget the send job of `message_id`, so that the sweep queues it again.

    For a reply held back by a send limit: its job ends without sending it.
    """
    _forget(queue, _marker("workers.messages.send_outbound", message_id))


def enqueue_translation(
    queue: Queue, message_id: int, client_id: int, intervals: tuple[int, ...]
) -> bool:
    """Queue translating the answers of the conversation of `message_id`.

    On the client's turn, so that it never runs beside the client's next
    message; best effort like `enqueue_inbound`.
    """
    return _enqueue(
        queue,
        "workers.translation.translate_answers",
        message_id,
        f"polku-client-{client_id}",
        intervals,
        f"translate answers after message {message_id}",
    )


def enqueue_handoff(
    queue: Queue,
    handoff_id: int,
    client_id: int,
    intervals: tuple[int, ...],
    again: bool = False,
) -> bool:
    """Queue the e-mail of handoff `handoff_id`; False if Redis is down.

    On the client's turn, after the translation of their last answers. Its
    retries span hours (HANDOFF_RETRY_INTERVALS); best effort like
    `enqueue_inbound`, since the sweep queues a pending handoff again.
    `again` queues it even if a job for it is known: the operator's retry
    after the last one failed.
    """
    function = "workers.handoff.send_handoff"
    if again:
        _forget(queue, _marker(function, handoff_id))
    return _enqueue(
        queue,
        function,
        handoff_id,
        f"polku-client-{client_id}",
        intervals,
        f"send handoff {handoff_id}",
    )


def enqueue_question(
    queue: Queue, question_id: int, client_id: int, intervals: tuple[int, ...]
) -> bool:
    """Queue the e-mail of a course participant's question to their teacher.

    On the client's turn; retried over hours like a handoff, and queued again
    by the sweep while it is pending.
    """
    return _enqueue(
        queue,
        "workers.course.send_question",
        question_id,
        f"polku-client-{client_id}",
        intervals,
        f"send course question {question_id}",
    )


def enqueue_reply(
    queue: Queue, message_id: int, client_id: int, intervals: tuple[int, ...]
) -> bool:
    """Queue translating and sending a counsellor's reply, on the client's turn."""
    return _enqueue(
        queue,
        "workers.handoff.translate_reply",
        message_id,
        f"polku-client-{client_id}",
        intervals,
        f"translate counsellor reply {message_id}",
    )


def _enqueue(
    queue: Queue,
    function: str,
    record_id: int,
    turn: str,
    intervals: tuple[int, ...],
    description: str,
) -> bool:
    # A marker says a job for this message is alive, for as long as its retries
    # can take. A retried webhook or the sweep finds it and queues nothing more;
    # it is gone when Redis lost its data or the job outlived it, which is
    # exactly when queueing again is right.
    marker = _marker(function, record_id)
    ttl = sum(intervals) + JOB_TIMEOUT * (len(intervals) + 1) + MARKER_MARGIN
    try:
        if not queue.connection.set(marker, 1, nx=True, ex=ttl):
            return True
        queue.enqueue(
            function,
            record_id,
            rate_limit=RateLimit(turn, 1),
            retry=Retry(max=len(intervals), interval=list(intervals)),
            job_timeout=JOB_TIMEOUT,
            failure_ttl=FAILURE_TTL,
            description=description,
        )
    except RedisError:
        logger.warning("%s: could not queue it", description, exc_info=True)
        _forget(queue, marker)
        return False

    return True


def _marker(function: str, record_id: int) -> str:
    return f"polku:job:{function}:{record_id}"


def _forget(queue: Queue, marker: str) -> None:
    try:
        queue.connection.delete(marker)
    except RedisError:
        pass


class PolkuWorker(Worker):
    """An RQ worker whose work horses never collect what the worker left behind.

    Native models (CTranslate2, the embedding engine) lose their threads in a
    forked child; destroying one there waits for those threads forever. Frozen
    before the fork, the worker's garbage is the worker's own to collect.

    It reports every WORKER_TTL - 15 seconds even when idle (RQ waits that long
    for a job), so that /readyz can ask for a worker seen in the last minute;
    and it times each job for /metrics and names it in the job's log lines.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL)
        super().__init__(*args, **kwargs)

    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        from bot.logs import job_context
        from bot.metrics import record_count, record_timing

        labels = {"function": job_function(job)}
        if job.enqueued_at is not None:
            waited = max((now() - job.enqueued_at).total_seconds(), 0.0)
            record_timing(self.connection, "polku_job_wait_seconds", waited, labels)
        began = time.perf_counter()
        with job_context(job.id):
            done = super().perform_job(job, queue, execution)
        ran = time.perf_counter() - began
        record_timing(self.connection, "polku_job_run_seconds", ran, labels)
        outcome = {**labels, "outcome": "ok" if done else "failed"}
        record_count(self.connection, "polku_jobs_total", 1, outcome)

        return done

    def work(self, *args: Any, **kwargs: Any) -> bool:
        try:
            return super().work(*args, **kwargs)
        finally:
            # RQ's scheduler opens a connection pool of its own and leaves it.
            if self.scheduler is not None and self.scheduler._connection is not None:
                self.scheduler._connection.close()

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        gc.freeze()
        try:
            super().fork_work_horse(job, queue)
        finally:
            if not self.is_horse:
                gc.unfreeze()
