"""The operator's probes: /healthz, /readyz against real dependencies, /metrics."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from rq import cron_scheduler_registry
from rq.cron import CronScheduler
from werkzeug.test import TestResponse

from bot import create_app, metrics
from bot.db import get_db
from bot.health import SWEEP_KEY
from bot.queue import get_queue
from tests.conftest import app_settings
from tests.factories import CLIENT_NUMBER, message_params, post_signed
from tests.helpers import (
    ROOT,
    embedded_environment,
    run_worker,
    wait_for,
    worker_processes,
)
from tests.openai_server import Step
from workers.maintenance import requeue_pending

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
TOKEN = "test-metrics-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dispose(app) -> None:
    """Close what an app opened: its probe's and its queue's Redis, its database."""
    close_probes(app)
    queue = app.extensions.get("polku.queue")
    if queue is not None:
        queue.connection.close()
    get_db(app).dispose()


def close_probes(app) -> None:
    """Stop the probes' threads and close their Redis connection."""
    probe = app.extensions.pop("polku.probe_redis", None)
    if probe is not None:
        probe.close()
    prober = app.extensions.pop("polku.prober", None)
    if prober is not None:
        prober.pool.shutdown(wait=False)


@pytest.fixture
def app(app):
    """The conftest's app; what the probes opened is closed after."""
    yield app
    close_probes(app)


@pytest.fixture
def metrics_app(app):
    app.config["POLKU"] = app.config["POLKU"].with_overrides(metrics_token=TOKEN)
    return app


def scrape(client) -> dict[str, list]:
    """GET /metrics with the token and parse it: family name -> its samples."""
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    text = response.get_data(as_text=True)
    families = list(text_string_to_metric_families(text))
    # Every sample belongs to a family with its HELP and TYPE lines.
    assert [
        f.name for f in families if f.type == "unknown" or not f.documentation
    ] == []
    assert CLIENT_NUMBER[1:] not in text

    return {family.name: family.samples for family in families}


def value(samples: list, name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def register_scheduler(app, name: str = "polku-test") -> CronScheduler:
    """Record a scheduler the way RQ's CronScheduler does when it starts."""
    scheduler = CronScheduler(connection=get_queue(app).connection, name=name)
    scheduler.register_birth()

    return scheduler


def test_healthz_answers_without_asking_any_dependency(tmp_path, twilio):
    port = closed_port()
    settings = app_settings(
        f"postgresql+psycopg://postgres@127.0.0.1:{port}/none",
        f"redis://127.0.0.1:{port}/0",
        twilio.url,
        tmp_path,
    )

    healthy = create_app(settings)
    response = healthy.test_client().get("/healthz")
    dispose(healthy)

    assert (response.status_code, response.get_data(as_text=True)) == (200, "ok\n")


def test_readyz_names_the_missing_worker_and_scheduler(app, client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json["failed"] == ["workers", "scheduler"]
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["redis"] == "ok"
    assert "no worker of queue polku" in response.json["checks"]["workers"]


@SQLITE
def test_readyz_is_ready_while_a_worker_process_runs_and_not_after(app, client):
    register_scheduler(app)
    with worker_processes(app, 1):
        wait_for(lambda: client.get("/readyz").status_code == 200, 60)
        assert client.get("/readyz").json == {
            "status": "ready",
            "checks": {
                "database": "ok",
                "redis": "ok",
                "workers": "ok",
                "scheduler": "ok",
            },
        }

    # A worker that stopped says so at once; one that had to be killed (a busy
    # machine) is no longer counted once its last heartbeat is a minute old.
    response = wait_for(lambda: _not_ready(client), 90)
    assert response.json["failed"] == ["workers"]


def _not_ready(client: FlaskClient) -> TestResponse | None:
    response = client.get("/readyz")
    return response if response.status_code == 503 else None


def test_readyz_fails_when_the_scheduler_went_silent(app, client):
    connection = get_queue(app).connection
    key = cron_scheduler_registry.get_registry_key()
    connection.zadd(key, {"polku-gone": time.time() - 600})

    response = client.get("/readyz")

    assert "scheduler" in response.json["failed"]
    assert "no scheduler seen" in response.json["checks"]["scheduler"]


@SQLITE
def test_readyz_fails_quickly_when_redis_is_unreachable(app, tmp_path, twilio):
    settings = app.config["POLKU"]
    closed = f"redis://127.0.0.1:{closed_port()}/0"
    unreachable = create_app(
        app_settings(settings.database_url, closed, twilio.url, tmp_path)
    )

    response = unreachable.test_client().get("/readyz")
    dispose(unreachable)

    assert response.status_code == 503
    assert response.json["failed"] == ["redis", "workers", "scheduler"]
    assert response.json["checks"]["redis"] == "failed: ConnectionError"
    assert response.json["checks"]["database"] == "ok"


def test_readyz_fails_when_the_database_is_unreachable(app, tmp_path, twilio):
    settings = app.config["POLKU"]
    closed = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/none"
    unreachable = create_app(
        app_settings(closed, settings.redis_url, twilio.url, tmp_path)
    )
    register_scheduler(unreachable)

    response = unreachable.test_client().get("/readyz")
    dispose(unreachable)

    assert response.status_code == 503
    assert response.json["failed"] == ["database", "workers"]
    assert response.json["checks"]["database"] == "failed: OperationalError"


def test_metrics_is_not_served_without_a_token_setting(app, client):
    assert client.get("/metrics", headers=BEARER).status_code == 404


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer ", 401),
        (f"Basic {TOKEN}", 401),
        ("Bearer wrong-token-0123456789", 403),
        (f"Bearer {TOKEN}x", 403),
    ],
)
def test_metrics_refuses_a_missing_or_wrong_token(
    metrics_app, client, authorization, status
):
    headers = {"Authorization": authorization} if authorization else {}

    response = client.get("/metrics", headers=headers)

    assert response.status_code == status
    assert "polku_" not in response.get_data(as_text=True)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_metrics_count_a_conversation_per_channel_and_language(
    metrics_app, client, twilio
):
    sent_forms = [message_params(Body=body) for body in ("Hei", "1")]
    for form in sent_forms:
        post_signed(client, "/twilio/messages", form)
    run_worker(metrics_app)

    families = scrape(client)

    messages = families["polku_messages"]
    inbound = {"direction": "in", "channel": "sms", "language": "fi"}
    assert value(messages, "polku_messages", **inbound, status="processed") == 2
    outbound = {"direction": "out", "channel": "sms", "language": "fi"}
    assert value(messages, "polku_messages", **outbound, status="sent") == len(
        twilio.messages
    )
    assert value(families["polku_clients"], "polku_clients", language="fi") == 1
    # The counters, for rates: both came before the language was known; a
    # retried webhook is not counted again.
    post_signed(client, "/twilio/messages", sent_forms[0])
    families = scrape(client)
    received = families["polku_messages_received"]
    name = "polku_messages_received_total"
    assert value(received, name, channel="sms", language="none") == 2
    sent = families["polku_messages_sent"]
    name = "polku_messages_sent_total"
    assert value(sent, name, channel="sms") == len(twilio.messages)
    assert value(sent, name, channel="sms", language="fi") >= 1
    wait = families["polku_job_wait_seconds"]
    handled = {"function": "handle_inbound"}
    assert value(wait, "polku_job_wait_seconds_count", **handled) >= 1
    assert value(wait, "polku_job_wait_seconds_bucket", **handled, le="+Inf") >= 1
    run = families["polku_job_run_seconds"]
    assert value(run, "polku_job_run_seconds_count", function="send_outbound") >= 1
    jobs = families["polku_jobs"]
    assert value(jobs, "polku_jobs_total", function="handle_inbound", outcome="ok") >= 1


def test_metrics_report_failures_queues_and_other_parts_counters(
    metrics_app, client, twilio
):
    twilio.fail_next(1, status=400, code=21211)
    post_signed(client, "/twilio/messages", message_params(Body="Hei"))
    run_worker(metrics_app)
    with metrics_app.app_context():
        metrics.count("polku_limited_total", kind="inbound")
        requeue_pending()

    families = scrape(client)

    failed = families["polku_outbound_failed"]
    assert value(failed, "polku_outbound_failed", error_code="21211") == 1
    limited = families["polku_limited"]
    assert value(limited, "polku_limited_total", kind="inbound") == 1
    queue = families["polku_queue_jobs"]
    assert {s.labels["state"] for s in queue} >= {"queued", "scheduled", "failed"}
    assert value(families["polku_dependency_up"], "polku_dependency_up") == 2
    sweep = families["polku_sweep_last_run_timestamp_seconds"][0].value
    assert sweep == pytest.approx(time.time(), abs=60)
    assert get_queue(metrics_app).connection.exists(SWEEP_KEY)


def test_readyz_and_metrics_under_serve_on_embedded_defaults(tmp_path: Path):
    """`flask serve` runs the worker and the scheduler itself: /readyz turns ready."""
    port = closed_port()
    env = embedded_environment(tmp_path / "instance")
    env["METRICS_TOKEN"] = TOKEN
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "serve"]
    server = subprocess.Popen(  # noqa: S603
        [*command, "--port", str(port)], cwd=ROOT, env=env, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> dict | None:
        try:
            response = requests.get(f"{base}/readyz", timeout=5)
        except requests.ConnectionError:
            return None
        return response.json() if response.status_code == 200 else None

    try:
        assert wait_for(ready, timeout=90)["checks"]["scheduler"] == "ok"
        scraped = requests.get(f"{base}/metrics", headers=BEARER, timeout=10)
    finally:
        server.terminate()
        server.wait(timeout=20)

    families = {f.name: f.samples for f in text_string_to_metric_families(scraped.text)}
    assert value(families["polku_workers_seen"], "polku_workers_seen") == 1
    assert "polku_scheduler_last_seen_timestamp_seconds" in families


def test_metrics_time_language_model_calls_by_purpose_and_outcome(
    llm_app, fake_openai, client
):
    from bot.llm import PROBE, ModelUnavailableError, get_language_model

    llm_app.config["POLKU"] = llm_app.config["POLKU"].with_overrides(
        metrics_token=TOKEN
    )
    fake_openai.reply("OK", Step(status=400))
    with llm_app.app_context():
        model = get_language_model(llm_app)
        model.complete(PROBE)
        with pytest.raises(ModelUnavailableError):
            model.complete(PROBE)

    families = scrape(client)

    seconds, calls = families["polku_llm_seconds"], families["polku_model_calls"]
    for outcome in ("ok", "error"):
        labels = {"purpose": "probe", "outcome": outcome}
        assert value(seconds, "polku_llm_seconds_count", **labels) == 1
        assert value(calls, "polku_model_calls", **labels) == 1


@SQLITE
def test_metrics_time_machine_translation_and_count_cache_hits(argos_app, client):
    from bot.gate import seal
    from translations.translator import get_translator

    argos_app.config["POLKU"] = argos_app.config["POLKU"].with_overrides(
        metrics_token=TOKEN
    )
    with argos_app.app_context():
        translator = get_translator(argos_app)
        for _ in range(2):
            translator.translate(seal("Я працювала кухарем"), "uk", "fi")

    families = scrape(client)

    seconds = families["polku_translation_seconds"]
    pair = {"source": "uk", "target": "fi"}
    assert value(seconds, "polku_translation_seconds_count", **pair) == 1
    cache = families["polku_translation_cache"]
    assert value(cache, "polku_translation_cache_total", result="miss") == 1
    assert value(cache, "polku_translation_cache_total", result="hit") == 1
