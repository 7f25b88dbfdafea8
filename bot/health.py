"""What the operator's tools ask: /healthz (the process answers), /readyz (the
database, Redis, a worker and the scheduler answer) and /metrics (Prometheus).

Beside the pipeline, never in it: read-only, quick, and no personal data.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from flask import Blueprint, Response, abort, current_app, jsonify, request
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, cron_scheduler_registry, worker_registration
from rq.utils import utcparse
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from bot.db import get_db
from bot.metrics import (
    CONTENT_TYPE,
    Family,
    language_label,
    render,
    stored_families,
)
from bot.models import Client, CourseQuestion, Handoff, Message, ModelCall
from bot.queue import QUEUE_NAME, redis_url

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import Engine

    from bot.db import Database

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

OK = "ok"
# A probe answers within about this long, whatever hangs behind it.
CHECK_SECONDS = 2.0
# An idle worker reports every 45 s (bot/queue.py WORKER_TTL); the scheduler
# every minute at most, and its sweep runs every minute.
WORKER_SEEN_SECONDS = 60
SCHEDULER_SEEN_SECONDS = 180
SWEEP_KEY = "polku:sweep:last"
# The database's counts are taken at most this often for /metrics.
DATABASE_COUNTS_SECONDS = 10
# Label values come from our own code, but are checked all the same: a label
# must never carry free text.
KIND = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-.")


@bp.get("/healthz")
def healthz() -> Response:
    """Answer at once: the process is up. No dependency is asked."""
    return Response("ok\n", mimetype="text/plain")


@bp.get("/readyz")
def readyz() -> Response:
    """Answer 200 when every dependency answers, 503 naming those that do not."""
    checks = run_checks(current_app._get_current_object())  # type: ignore[attr-defined]
    failed = [name for name, state in checks.items() if state != OK]
    body: dict[str, object] = {
        "status": "not ready" if failed else "ready",
        "checks": checks,
    }
    if failed:
        body["failed"] = failed
    _log_change(failed)
    response = jsonify(body)
    response.status_code = 503 if failed else 200
    response.headers["Cache-Control"] = "no-store"

    return response


@bp.get("/metrics")
def metrics() -> Response:
    """Serve the figures in Prometheus' text format, to the bearer of METRICS_TOKEN."""
    token = current_app.config["POLKU"].metrics_token
    if not token:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return Response(
            "401 Unauthorized: send the METRICS_TOKEN as a bearer token\n",
            401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="polku-metrics"'},
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        logger.warning("metrics: refused a wrong token")
        abort(403)

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    response = Response(render(collect(app)), content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"

    return response


# -- Readiness -----------------------------------------------------------------


def _log_change(failed: list[str]) -> None:
    """Log when this process turns not ready or ready again, not every probe."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    previous = app.extensions.get("polku.not_ready")
    app.extensions["polku.not_ready"] = failed
    if failed and failed != previous:
        logger.warning("readyz: not ready: %s", ", ".join(failed))
    elif not failed and previous:
        logger.info("readyz: ready again")


def run_checks(app: Flask) -> dict[str, str]:
    """Run the checks side by side; return each one's state, "ok" or what failed.

    Each check runs in a thread of its own and is given CHECK_SECONDS: a hung
    database or Redis makes the probe fail, never hang. A check still stuck
    from an earlier probe is not started again, so a hang costs one thread.
    """
    connection = probe_redis(app)
    engine = get_db(app).engine
    checks: dict[str, Callable[[], str]] = {
        "database": lambda: _check_database(engine),
        "redis": lambda: _check_redis(connection),
        "workers": lambda: _check_workers(connection),
        "scheduler": lambda: _check_scheduler(connection),
    }

    return _prober(app).run(checks, CHECK_SECONDS)


class _Prober:
    """A few threads for the checks, and the one of each still running."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")
        self.running: dict[str, Future[str]] = {}
        self.lock = threading.Lock()

    def run(
        self, checks: dict[str, Callable[[], str]], seconds: float
    ) -> dict[str, str]:
        futures: dict[str, Future[str] | None] = {}
        with self.lock:
            for name, check in checks.items():
                previous = self.running.get(name)
                if previous is not None and not previous.done():
                    futures[name] = None
                    continue
                futures[name] = self.running[name] = self.pool.submit(check)
        wait([f for f in futures.values() if f is not None], timeout=seconds)

        return {name: _outcome(future, seconds) for name, future in futures.items()}


def _outcome(future: Future[str] | None, seconds: float) -> str:
    if future is None:
        return "no answer yet to the previous check"
    if not future.done():
        return f"no answer within {seconds:g} s"
    error = future.exception()
    if error is not None:
        # The class only: a message may quote a URL with its password.
        return f"failed: {type(error).__name__}"

    return future.result()


def _prober(app: Flask) -> _Prober:
    # Made in the process that serves: threads do not survive a fork.
    prober = app.extensions.get("polku.prober")
    if prober is None or prober.pid != os.getpid():
        prober = app.extensions["polku.prober"] = _Prober()

    return prober


def probe_redis(app: Flask) -> Redis:
    """Return a Redis connection with short timeouts, for probes and /metrics.

    It never starts the embedded Redis: a probe only looks.
    """
    connection = app.extensions.get("polku.probe_redis")
    if connection is None:
        connection = Redis.from_url(
            redis_url(app.config["POLKU"]),
            socket_connect_timeout=1,
            socket_timeout=CHECK_SECONDS,
        )
        app.extensions["polku.probe_redis"] = connection

    return connection


def _check_database(engine: Engine) -> str:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))

    return OK


def _check_redis(connection: Redis) -> str:
    connection.ping()

    return OK


def _check_workers(connection: Redis) -> str:
    if workers_seen(connection):
        return OK

    return f"no worker of queue {QUEUE_NAME} seen in the last {WORKER_SEEN_SECONDS} s"


def _check_scheduler(connection: Redis) -> str:
    last = scheduler_heartbeat(connection)
    if last is not None and time.time() - last <= SCHEDULER_SEEN_SECONDS:
        return OK

    return f"no scheduler seen in the last {SCHEDULER_SEEN_SECONDS} s"


def workers_seen(connection: Redis, within: float = WORKER_SEEN_SECONDS) -> int:
    """Count the workers of Polku's queue whose last heartbeat is that recent."""
    keys = sorted(
        worker_registration.get_keys(Queue(QUEUE_NAME, connection=connection))
    )
    if not keys:
        return 0
    pipe = connection.pipeline(transaction=False)
    for key in keys:
        pipe.hget(key, "last_heartbeat")
    cutoff = time.time() - within
    seen = 0
    for raw in pipe.execute():
        if raw and utcparse(raw.decode()).timestamp() >= cutoff:
            seen += 1

    return seen


def scheduler_heartbeat(connection: Redis) -> float | None:
    """Return when a scheduler (RQ's CronScheduler) last reported, in Unix time."""
    newest = connection.zrevrange(
        cron_scheduler_registry.get_registry_key(), 0, 0, withscores=True
    )

    return float(newest[0][1]) if newest else None


def record_sweep(connection: Redis) -> None:
    """Note that the sweep ran now (workers/maintenance.py), for /metrics."""
    connection.set(SWEEP_KEY, f"{time.time():.3f}")


# -- Metrics -------------------------------------------------------------------


def collect(app: Flask) -> list[Family]:
    """Gather every family: the database's counts, the queue's, and what the
    processes recorded in Redis. A dependency that fails is reported down and
    the rest still served."""
    up = Family("polku_dependency_up", "gauge", "1 when the dependency answered.")
    families: list[Family] = [up]
    try:
        families += _recent_database_families(app)
        up.add(1, dependency="database")
    except SQLAlchemyError:
        logger.warning("metrics: database did not answer", exc_info=True)
        up.add(0, dependency="database")
    try:
        connection = probe_redis(app)
        families += queue_families(connection)
        families += stored_families(connection)
        up.add(1, dependency="redis")
    except RedisError:
        logger.warning("metrics: Redis did not answer", exc_info=True)
        up.add(0, dependency="redis")

    return families


def _recent_database_families(app: Flask) -> list[Family]:
    # Counting every message takes about 0.1 s per 200,000 on PostgreSQL (0.7 s
    # on SQLite): a second scraper within seconds gets the same counts.
    taken, families = app.extensions.get("polku.metrics_db", (0.0, []))
    if time.monotonic() - taken > DATABASE_COUNTS_SECONDS:
        families = database_families(get_db(app))
        app.extensions["polku.metrics_db"] = (time.monotonic(), families)

    return families


def database_families(db: Database) -> list[Family]:
    """Count messages, clients, handoffs, course questions and model calls.

    Grouped counts only, no row is read: what the tables hold now, so they
    fall when retention deletes old rows.
    """
    messages = Family(
        "polku_messages",
        "gauge",
        "Messages held, by direction, channel, client language and status.",
    )
    failed = Family(
        "polku_outbound_failed",
        "gauge",
        "Outbound messages held that failed or went undelivered, by channel and "
        "Twilio error code.",
    )
    clients = Family("polku_clients", "gauge", "Clients held, by channel and language.")
    opted_out = Family(
        "polku_clients_opted_out",
        "gauge",
        "Clients who opted out (STOP), by channel.",
    )
    handoffs = Family("polku_handoffs", "gauge", "Handoffs held, by status.")
    questions = Family(
        "polku_course_questions", "gauge", "Course questions held, by status."
    )
    calls = Family(
        "polku_model_calls",
        "gauge",
        "Language-model calls in the AI register, by purpose and outcome.",
    )
    with db.session() as session:
        for direction, channel, language, status, n in session.execute(
            select(
                Message.direction,
                Message.channel,
                Client.language,
                Message.status,
                func.count(),
            )
            .join(Client, Client.id == Message.client_id)
            .group_by(
                Message.direction, Message.channel, Client.language, Message.status
            )
        ):
            messages.add(
                n,
                direction=_kind(direction),
                channel=_kind(channel),
                language=_language(language),
                status=_kind(status),
            )
        for channel, code, n in session.execute(
            select(Message.channel, Message.error_code, func.count())
            .where(
                Message.direction == "out",
                Message.status.in_(("failed", "undelivered")),
            )
            .group_by(Message.channel, Message.error_code)
        ):
            error_code = str(int(code)) if code is not None else "none"
            failed.add(n, channel=_kind(channel), error_code=error_code)
        for channel, language, n, stopped in session.execute(
            select(
                Client.channel,
                Client.language,
                func.count(),
                func.count(Client.opted_out_at),
            ).group_by(Client.channel, Client.language)
        ):
            clients.add(n, channel=_kind(channel), language=_language(language))
            opted_out.add(stopped, channel=_kind(channel))
        for status, n in session.execute(
            select(Handoff.status, func.count()).group_by(Handoff.status)
        ):
            handoffs.add(n, status=_kind(status))
        for status, n in session.execute(
            select(CourseQuestion.status, func.count()).group_by(CourseQuestion.status)
        ):
            questions.add(n, status=_kind(status))
        for purpose, outcome, n in session.execute(
            select(ModelCall.purpose, ModelCall.outcome, func.count()).group_by(
                ModelCall.purpose, ModelCall.outcome
            )
        ):
            calls.add(n, purpose=_kind(purpose), outcome=_kind(outcome))
    _merge(opted_out)

    return [messages, failed, clients, opted_out, handoffs, questions, calls]


def queue_families(connection: Redis) -> list[Family]:
    """Read the queue's lengths, the workers seen, and when the scheduler and
    its sweep last ran. Plain reads: RQ's registry methods would clean up."""
    queue = Queue(QUEUE_NAME, connection=connection)
    registries = {
        "scheduled": queue.scheduled_job_registry.key,
        "started": queue.started_job_registry.key,
        "failed": queue.failed_job_registry.key,
        "deferred": queue.deferred_job_registry.key,
    }
    pipe = connection.pipeline(transaction=False)
    pipe.llen(queue.key)
    for key in registries.values():
        pipe.zcard(key)
    pipe.get(SWEEP_KEY)
    queued, *sizes, sweep = pipe.execute()

    jobs = Family(
        "polku_queue_jobs",
        "gauge",
        "Jobs in Polku's RQ queue (queued) and its registries, by state.",
    )
    jobs.add(queued, state="queued")
    for state, size in zip(registries, sizes, strict=True):
        jobs.add(size, state=state)
    workers = Family(
        "polku_workers_seen",
        "gauge",
        f"Workers of the queue that reported in the last {WORKER_SEEN_SECONDS} s.",
    )
    workers.add(workers_seen(connection))
    families = [jobs, workers]
    heartbeat = scheduler_heartbeat(connection)
    if heartbeat is not None:
        scheduler = Family(
            "polku_scheduler_last_seen_timestamp_seconds",
            "gauge",
            "When a scheduler last reported, in Unix time.",
        )
        scheduler.add(heartbeat)
        families.append(scheduler)
    if sweep is not None:
        swept = Family(
            "polku_sweep_last_run_timestamp_seconds",
            "gauge",
            "When the sweep for waiting messages last ran, in Unix time.",
        )
        swept.add(float(sweep))
        families.append(swept)

    return families


def _kind(value: object) -> str:
    if value is None:
        return "none"
    word = str(value).lower()[:32]

    return word if word and set(word) <= KIND else "other"


def _language(code: str | None) -> str:
    return language_label(code)


def _merge(family: Family) -> None:
    """Add up samples of the same series (several languages per channel)."""
    totals: dict[str, float] = {}
    for series, value in family.samples:
        totals[series] = totals.get(series, 0) + value
    family.samples = list(totals.items())
