"""Faults, with real processes on loopback: a worker killed mid-job, Redis and
PostgreSQL restarted under traffic, Twilio, the model and SMTP failing or slow.

The tests that start their own servers need `redis-server` and PostgreSQL's
`initdb`/`pg_ctl` (/usr/lib/postgresql/15/bin); without them they are skipped,
or fail with POLKU_REQUIRE_SERVICES=1. Nothing here touches the shared servers
beyond the tests' own Redis database and PostgreSQL databases.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

import bot.llm_openai  # noqa: F401 - loaded once, before work horses fork
import workers
from bot import channels, create_app, metrics, schema
from bot.db import get_db
from bot.handoff import PENDING, SENT, STALE_CLAIM
from bot.models import Client, Handoff, Message, ModelCall, utcnow
from bot.queue import get_queue
from bot.settings import Settings
from tests.conftest import _collect_quietly, _missing, app_settings
from tests.factories import CLIENT_NUMBER, message_params, post_signed
from tests.helpers import BurstWorker, queued_jobs, run_worker, wait_for
from tests.openai_server import FakeOpenAI, Step, template_of
from tests.processes import (
    PostgresCluster,
    RedisServer,
    WorkerProcess,
    postgres_binaries,
    redis_server_executable,
    worker_environment,
)
from tests.smtp_server import LocalSmtp
from tests.test_assistant import reading
from tests.twilio_server import FakeTwilio
from translations import text as catalogue
from workers.maintenance import requeue_pending
from workers.messages import handle_inbound

PATH = "/twilio/messages"
FIRST, SECOND = "+358401000001", "+358401000002"
# Up to the situation step, whose free answer only a model can read.
TO_SITUATION = ["Hei", "1", "1", "41"]
FREE_ANSWER = "tehdas suljettiin"
# The end-to-end fault tests run on the production database; the in-process
# ones on SQLite, which the rest of the suite checks against PostgreSQL.
POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def say(client: FlaskClient, body: str, **fields: str) -> Any:
    """Post one SMS webhook signed as Twilio signs it; return the response."""
    return post_signed(client, PATH, message_params(Body=body, **fields))


def messages(app: Flask, direction: str) -> list[Message]:
    with get_db(app).session() as session:
        query = select(Message).where(Message.direction == direction)
        return list(session.scalars(query.order_by(Message.id)))


def failures(app: Flask, **labels: str) -> int:
    """The polku_failures_total counter with `labels`, as /metrics would read it."""
    stored = get_queue(app).connection.hget(
        metrics.COUNTERS, metrics.field("polku_failures_total", labels)
    )
    return int(stored or 0)


def assert_each_answered_once_in_order(app: Flask, twilio: FakeTwilio) -> None:
    """Every inbound message answered; every reply sent once, in its order."""
    assert {m.status for m in messages(app, "in")} == {"processed"}
    replies = messages(app, "out")
    assert replies and {m.status for m in replies} == {"sent"}
    with get_db(app).session() as session:
        numbers = {c.id: c.address for c in session.scalars(select(Client))}
    for client_id, number in numbers.items():
        mine = [m for m in replies if m.client_id == client_id]
        assert twilio.bodies_to(number) == [m.body for m in mine]
        answered = [
            m.processed_at for m in messages(app, "in") if m.client_id == client_id
        ]
        assert answered == sorted(answered)


def settled(app: Flask) -> bool:
    """Whether every inbound message is answered and every reply handed over."""
    inbound, outbound = messages(app, "in"), messages(app, "out")
    waiting = ("received", "queued", "sending")

    return not any(m.status in waiting for m in [*inbound, *outbound])


def with_model(app: Flask, fake_openai: FakeOpenAI, timeout: float) -> Settings:
    """The app's settings with the local model server, one try per call."""
    return app.config["POLKU"].with_overrides(
        openai_base_url=fake_openai.url,
        openai_api_key="test-key",
        llm_model="polku-test",
        llm_timeout=timeout,
        llm_max_retries=0,
    )


def use_redis(app: Flask, url: str) -> None:
    """Point the app (and the jobs it runs in this process) at another Redis."""
    app.config["POLKU"] = app.config["POLKU"].with_overrides(redis_url=url)
    get_queue(app).connection.close()
    app.extensions.pop("polku.queue")


def lapse_heartbeats(redis: Redis) -> int:
    """Age the heartbeats of every running job, as 90 silent seconds would.

    A dead worker's job stays "started" until its heartbeat lapses; RQ then
    hands it back (StartedJobRegistry.cleanup) at a worker's maintenance. The
    dead worker's scheduler lock (61 s) has lapsed by then too.
    """
    redis.delete("rq:scheduler-lock:polku")
    past = time.time() - 1
    registry = StartedJobRegistry("polku", connection=redis)
    entries = redis.zrange(registry.key, 0, -1)
    for entry in entries:
        redis.zadd(registry.key, {entry: past})
        job_id = entry.decode().partition(":")[0]
        executions = f"rq:executions:{job_id}"
        for execution in redis.zrange(executions, 0, -1):
            redis.zadd(executions, {execution: past})

    return len(entries)


@pytest.fixture
def bot_log(tmp_path: Path) -> Iterator[Path]:
    """A file that gets Polku's log lines, also those of forked work horses."""
    path = tmp_path / "bot.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("bot")
    logger.addHandler(handler)
    yield path
    logger.removeHandler(handler)
    handler.close()


# -- processes ---------------------------------------------------------------


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], WorkerProcess]]:
    """Start `flask worker` processes; every one is killed at teardown."""
    started: list[WorkerProcess] = []

    def start(environment: dict[str, str]) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        started.append(WorkerProcess(environment, log).start())
        return started[-1]

    yield start
    for worker in started:
        worker.kill()
        # Shown with a failing test's report only.
        print(f"--- {worker.log.name}\n{worker.output()[-5000:]}")  # noqa: T201


@pytest.fixture
def dedicated_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A `redis-server` of this test's own, without persistence."""
    executable = redis_server_executable()
    if executable is None:
        _missing("redis-server is not installed (apt-get install redis-server)")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder, executable)
    try:
        yield server.start()
    finally:
        server.kill()


@pytest.fixture(scope="module")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of these tests' own, to stop and start at will."""
    bin_dir = postgres_binaries()
    if bin_dir is None:
        _missing("PostgreSQL 15's initdb and pg_ctl are not installed")
    cluster = PostgresCluster(bin_dir)
    try:
        cluster.init().start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def pg_app(
    postgres_cluster: PostgresCluster,
    redis_url: str,
    twilio: FakeTwilio,
    tmp_path: Path,
) -> Iterator[Flask]:
    """The app on a fresh database of the dedicated cluster."""
    if not postgres_cluster.running():  # a failed test left it down
        postgres_cluster.start()
    name = f"polku_faults_{secrets.token_hex(4)}"
    admin = create_engine(postgres_cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(postgres_cluster.url).set(database=name)
    database_url = url.render_as_string(hide_password=False)
    app = create_app(app_settings(database_url, redis_url, twilio.url, tmp_path))
    schema.upgrade(get_db(app).engine)
    get_queue(app).connection.flushdb()
    workers.use_app(app)
    yield app
    get_db(app).dispose()
    get_queue(app).connection.close()
    _collect_quietly()


# -- 1. a worker killed in the middle of a job --------------------------------


@POSTGRESQL
def test_a_worker_killed_mid_answer_leaves_the_message_to_the_next_one_answered_once(
    app, client, twilio, fake_openai, spawn
):
    settings = with_model(app, fake_openai, timeout=60.0)
    killed = False

    def answer(body: dict[str, Any]) -> Step:
        # The model holds the first reading until the worker is dead.
        if template_of(body) == "read_answer_1" and not killed:
            return Step(reading(body, value="unemployed"), delay=60)
        return Step(reading(body, value="unemployed"))

    fake_openai.answer_with(answer)
    for body in [*TO_SITUATION, FREE_ANSWER]:
        say(client, body)
    environment = worker_environment(settings)
    worker = spawn(environment)
    wait_for(lambda: fake_openai.requests, timeout=60)

    # SIGKILL the worker, its work horse and RQ's scheduler: nothing cleans up.
    worker.kill()
    killed = True
    fake_openai.release()
    *_, held = messages(app, "in")
    assert held.status == "received"  # the answer's transaction never committed

    # The sweep queues nothing more: the job is still RQ's, marked as running.
    jobs = queued_jobs(app)
    requeue_pending(grace_seconds=0)
    assert queued_jobs(app) == jobs
    assert lapse_heartbeats(get_queue(app).connection) == 1
    # A new worker's first maintenance hands the job back for its retry.
    spawn(environment)
    wait_for(lambda: settled(app), timeout=60)

    assert_each_answered_once_in_order(app, twilio)
    assert twilio.bodies_to(CLIENT_NUMBER)[-1].startswith(
        catalogue("interview.situation_since", "fi")
    )
    readings = [r for r in fake_openai.requests if template_of(r["body"])]
    assert len(readings) == 2  # the killed try and the retry
    assert len(FailedJobRegistry(queue=get_queue(app))) == 0


@SQLITE
def test_the_sweep_sends_again_a_reply_a_dead_worker_left_sending(app, client, twilio):
    say(client, "Hei")
    [inbound] = messages(app, "in")
    handle_inbound(inbound.id)
    # The send job died mid-send with no try left, and RQ has let it go.
    get_queue(app).connection.flushdb()
    [reply] = messages(app, "out")
    with get_db(app).transaction() as session:
        session.get(Message, reply.id).status = "sending"

    requeue_pending(grace_seconds=0)
    assert queued_jobs(app) == 0  # young: its job may still be at it
    with get_db(app).transaction() as session:
        session.get(Message, reply.id).created_at = utcnow() - STALE_CLAIM
    requeue_pending(grace_seconds=0)
    run_worker(app)

    assert_each_answered_once_in_order(app, twilio)


# -- 2. Redis restarted while messages arrive -----------------------------------


@SQLITE
def test_webhooks_answer_through_a_redis_restart_and_every_message_is_answered_once(
    app, client, twilio, dedicated_redis
):
    use_redis(app, dedicated_redis.url)
    assert say(client, "Hei", From=FIRST).status_code == 200
    assert say(client, "Hej", From=SECOND).status_code == 200

    dedicated_redis.kill()  # no persistence: the queued jobs are gone
    for body, sender in [("1", FIRST), ("3", SECOND), ("HELP", FIRST)]:
        response = say(client, body, From=sender)
        assert response.status_code == 200
        assert response.text.endswith("<Response></Response>")
    dedicated_redis.start()
    assert say(client, "HELP", From=SECOND).status_code == 200

    requeue_pending(grace_seconds=0)
    run_worker(app)

    assert len(messages(app, "in")) == 6
    assert_each_answered_once_in_order(app, twilio)
    assert twilio.bodies_to(FIRST)[-1].startswith("Komennot:")


# -- 3. PostgreSQL restarted -------------------------------------------------------


def test_the_webhook_answers_503_while_postgresql_is_down_and_recovers_in_process(
    pg_app, postgres_cluster, twilio, caplog
):
    client = pg_app.test_client()
    assert say(client, "Hei").status_code == 200
    retried = message_params(Body="1")

    postgres_cluster.stop()
    caplog.set_level(logging.WARNING)
    response = post_signed(client, PATH, retried)
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert "Traceback" not in response.text and "SQL" not in response.text
    assert "database unavailable on POST /twilio/messages" in caplog.text

    # Twilio sends the same webhook again; the same app process serves it.
    postgres_cluster.start()
    assert post_signed(client, PATH, retried).status_code == 200
    assert post_signed(client, PATH, retried).status_code == 200
    with get_db(pg_app).session() as session:
        assert len(session.scalars(select(Client)).all()) == 1
    assert [m.provider_sid for m in messages(pg_app, "in")][-1] == retried["MessageSid"]
    assert len(messages(pg_app, "in")) == 2

    run_worker(pg_app)
    assert_each_answered_once_in_order(pg_app, twilio)


def test_a_worker_that_cannot_reach_postgresql_retries_the_job(
    pg_app, postgres_cluster, twilio
):
    client = pg_app.test_client()
    assert say(client, "Hei").status_code == 200
    queue = get_queue(pg_app)

    postgres_cluster.stop()
    BurstWorker([queue], connection=queue.connection).work(
        burst=True, logging_level="CRITICAL"
    )
    # The try failed on the database, and RQ holds the job for its retry.
    assert queue.scheduled_job_registry.count == 1
    assert len(FailedJobRegistry(queue=queue)) == 0

    postgres_cluster.start()
    [message] = messages(pg_app, "in")
    assert (message.status, message.attempts) == ("received", 0)
    run_worker(pg_app)
    assert_each_answered_once_in_order(pg_app, twilio)


# -- 4. Twilio, the model and SMTP failing or slow ---------------------------------


@SQLITE
def test_a_reply_twilio_refuses_then_times_out_on_is_failed_logged_and_counted(
    app, client, twilio, bot_log
):
    app.config["POLKU"] = app.config["POLKU"].with_overrides(twilio_timeout=0.3)
    channels.init_app(app)  # the Twilio client takes its timeout when built
    twilio.fail_next(1, status=500)
    twilio.stall_next(2, seconds=10)

    say(client, "Hei")
    run_worker(app)

    [reply] = messages(app, "out")
    assert (reply.status, reply.attempts) == ("failed", 3)
    assert twilio.messages == [] and twilio.state.requests == 3
    assert failures(app, kind="twilio_send") == 1
    logged = bot_log.read_text()
    assert f"message {reply.id}: send failed, will retry: Twilio answered 500" in logged
    [last] = [line for line in logged.splitlines() if "after the last retry" in line]
    assert "ERROR" in last and f"message {reply.id} to client {reply.client_id}" in last
    assert "Twilio could not be reached: ReadTimeout" in last


@SQLITE
def test_a_model_that_times_out_leaves_the_interview_to_the_rules_and_is_counted(
    app, client, twilio, fake_openai
):
    app.config["POLKU"] = with_model(app, fake_openai, timeout=0.3)
    fake_openai.default = Step(delay=5)

    for body in [*TO_SITUATION, FREE_ANSWER]:
        say(client, body)
    run_worker(app)

    # Asked again as in deterministic mode; nothing waits on the model.
    reask = catalogue("flow.reask.choice", "fi", count=6)
    assert twilio.bodies_to(CLIENT_NUMBER)[-1].startswith(reask)
    with get_db(app).session() as session:
        outcomes = session.scalars(select(ModelCall.outcome)).all()
    assert outcomes == ["timeout"]
    assert failures(app, kind="llm", outcome="timeout") == 1


@SQLITE
def test_an_smtp_outage_keeps_the_handoff_pending_but_not_the_clients_reply(
    mail_app, client, twilio, smtp: LocalSmtp
):
    smtp.stop()
    for body in ["Hei", "1", "Juva", "ihminen"]:
        say(client, body)
    queue = get_queue(mail_app)
    BurstWorker([queue], connection=queue.connection).work(
        burst=True, logging_level="CRITICAL"
    )

    with get_db(mail_app).session() as session:
        handoff = session.scalars(select(Handoff)).one()
    assert (handoff.status, handoff.attempts) == (PENDING, 1)
    assert failures(mail_app, kind="handoff_mail") == 1
    assert {m.status for m in messages(mail_app, "out")} == {"sent"}

    smtp.start()
    run_worker(mail_app)
    with get_db(mail_app).session() as session:
        assert session.scalars(select(Handoff.status)).one() == SENT
    assert len(smtp.messages) == 1
