"""`flask --app wsgi doctor`: the operator's checks against real services.

Real Redis, real SQLite and PostgreSQL databases, the aiosmtpd server, the local
Twilio and OpenAI-compatible servers, real RQ workers; ports where nothing listens.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result as CliResult
from cryptography.fernet import Fernet
from flask import Flask
from redis import Redis
from rq import Queue, Worker
from rq.cron import CronScheduler
from sqlalchemy import text

from bot import create_app, schema
from bot.db import Database, get_db
from bot.doctor import CHECKS, Context, doctor_requested, run_checks
from bot.queue import QUEUE_NAME
from flows import FLOWS_DIR
from tests.conftest import ROOT, app_settings
from tests.factories import AUTH_TOKEN
from tests.helpers import run_worker
from tests.openai_server import Step
from tests.smtp_server import LocalSmtp
from tests.twilio_server import FakeTwilio

SECRET_KEY = "doctor-secret-key-that-must-never-be-shown-1234"
ENCRYPTION_KEY = Fernet.generate_key().decode()
OPENAI_KEY = "sk-doctor-openai-key-5b8e"
MAIL_DOMAIN = "polku.test"


def closed_port() -> int:
    """A local port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def statuses(output: str) -> dict[str, str]:
    """Each check's status, by name, from the doctor's output."""
    found = {}
    for line in output.splitlines():
        status, name = line[:4].strip(), line[6:24].strip()
        if status in ("OK", "WARN", "FAIL", "SKIP") and name:
            found[name] = status

    return found


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite database of its own."""
    url = f"sqlite:///{tmp_path / 'polku.db'}"
    database = Database(url)
    schema.upgrade(database.engine)
    database.dispose()

    return url


@pytest.fixture
def teams_file(tmp_path: Path) -> Path:
    """The shipped teams with real-looking addresses instead of placeholders."""
    path = tmp_path / "teams.yaml"
    shipped = (FLOWS_DIR / "teams.yaml").read_text(encoding="utf-8")
    path.write_text(shipped.replace("@example.invalid", f"@{MAIL_DOMAIN}"))

    return path


@pytest.fixture
def make_app(
    tmp_path: Path,
    sqlite_url: str,
    redis_url: str,
    twilio: FakeTwilio,
    smtp: LocalSmtp,
    teams_file: Path,
) -> Iterator[Callable[..., Flask]]:
    """Build apps on a healthy configuration, with `overrides` applied."""
    apps: list[Flask] = []

    def make(**overrides: object) -> Flask:
        instance = tmp_path / "instance"
        instance.mkdir(exist_ok=True)
        config = app_settings(sqlite_url, redis_url, twilio.url, instance)
        config.update(
            secret_key=SECRET_KEY,
            encryption_keys=(ENCRYPTION_KEY,),
            smtp_url=smtp.url,
            mail_from=f"Polku <polku@{MAIL_DOMAIN}>",
            teams_file=teams_file,
        )
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        get_db(app).dispose()


@pytest.fixture
def clean_redis(redis_client: Redis) -> Redis:
    redis_client.flushdb()
    return redis_client


def doctor(app: Flask, *args: str) -> CliResult:
    return app.test_cli_runner().invoke(args=["doctor", *args])


def test_doctor_passes_a_healthy_configuration(make_app, clean_redis):
    result = doctor(make_app())

    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    found = statuses(result.output)
    for name in ("settings", "schema", "redis", "twilio", "public url", "smtp"):
        assert found[name] == "OK", result.output
    assert found["teams"] == "OK"
    assert found["database"] == "WARN"  # SQLite, with Twilio configured
    assert "EHLO, NOOP passed" in result.output
    for secret in (SECRET_KEY, ENCRYPTION_KEY, AUTH_TOKEN):
        assert secret not in result.output


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        (None, "no Polku schema"),
        ("0003", "this release needs"),
        ("9999", "does not know"),
    ],
)
def test_doctor_fails_a_database_not_at_the_newest_schema(
    make_app, clean_redis, tmp_path, revision, expected
):
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()
    url = f"sqlite:///{path}"
    if revision is not None:
        database = Database(url)
        schema.upgrade(database.engine, "0003")
        with database.engine.begin() as connection:
            connection.execute(
                text("UPDATE alembic_version SET version_num = :revision"),
                {"revision": revision},
            )
        database.dispose()

    result = doctor(make_app(database_url=url))

    assert result.exit_code == 1
    assert statuses(result.output)["schema"] == "FAIL"
    assert expected in result.output
    if revision != "9999":
        assert "run `flask --app wsgi db upgrade`" in result.output


def test_doctor_fails_when_redis_does_not_answer(make_app):
    url = f"redis://127.0.0.1:{closed_port()}/10"

    result = doctor(make_app(redis_url=url))

    assert result.exit_code == 1
    found = statuses(result.output)
    assert found["redis"] == "FAIL"
    assert found["workers"] == found["failed jobs"] == "SKIP"
    assert "fix: start Redis, or correct REDIS_URL" in result.output


def test_doctor_fails_a_malformed_twilio_auth_token(make_app, clean_redis):
    token = "not-a-token-but-a-secret"

    result = doctor(make_app(twilio_auth_token=token))

    assert result.exit_code == 1
    assert statuses(result.output)["twilio"] == "FAIL"
    assert "TWILIO_AUTH_TOKEN is not 32 hexadecimal digits" in result.output
    assert "fix: copy the Auth Token from the Twilio console" in result.output
    assert token not in result.output


def test_doctor_fails_when_no_smtp_server_answers(make_app, clean_redis):
    port = closed_port()

    result = doctor(make_app(smtp_url=f"smtp://127.0.0.1:{port}"))

    assert result.exit_code == 1
    assert statuses(result.output)["smtp"] == "FAIL"
    assert f"127.0.0.1:{port}: connect failed: ConnectionRefusedError" in result.output
    assert "fix: check SMTP_URL's host and port" in result.output


def test_doctor_never_prints_secrets(make_app, twilio, fake_openai):
    passwords = ["pg-pass-9f3a", "redis-pass-7c1d", "smtp-pass-4e2b"]
    twilio.state.auth_token = AUTH_TOKEN
    app = make_app(
        database_url=f"postgresql://polku:{passwords[0]}@127.0.0.1:{closed_port()}/p",
        redis_url=f"redis://:{passwords[1]}@127.0.0.1:{closed_port()}/10",
        smtp_url=f"smtp+starttls://127.0.0.1:{closed_port()}",
        smtp_user="polku",
        smtp_password=passwords[2],
        openai_api_key=OPENAI_KEY,
        llm_model="polku-test",
        openai_base_url=fake_openai.url,
    )

    result = doctor(app, "--online")

    assert result.exit_code == 1
    assert "redis://:***@127.0.0.1" in result.output
    secrets = [*passwords, SECRET_KEY, ENCRYPTION_KEY, AUTH_TOKEN, OPENAI_KEY]
    for secret in secrets:
        assert secret not in result.output


def test_doctor_online_calls_twilio_and_the_model(make_app, twilio, fake_openai):
    twilio.state.auth_token = AUTH_TOKEN
    app = make_app(
        openai_api_key=OPENAI_KEY,
        llm_model="polku-test",
        openai_base_url=fake_openai.url,
    )

    result = doctor(app, "--online")

    found = statuses(result.output)
    assert found["twilio account"] == found["llm call"] == "OK", result.output
    assert "the account is active" in result.output
    assert [request["path"] for request in fake_openai.requests] == [
        "/v1/chat/completions"
    ]
    assert twilio.messages == []


def test_doctor_online_fails_credentials_twilio_refuses(make_app, twilio):
    twilio.state.auth_token = "0" * 32

    result = doctor(make_app(), "--online")

    assert result.exit_code == 1
    assert statuses(result.output)["twilio account"] == "FAIL"
    assert "Twilio refused the credentials (HTTP 401, error 20003)" in result.output


def test_doctor_gives_up_on_a_check_that_overruns(make_app, clean_redis, fake_openai):
    fake_openai.reply(Step(delay=3.0))
    app = make_app(
        openai_api_key=OPENAI_KEY,
        llm_model="polku-test",
        openai_base_url=fake_openai.url,
        llm_timeout=10.0,
    )

    result = doctor(app, "--online", "--timeout", "1")

    assert result.exit_code == 1
    assert statuses(result.output)["llm call"] == "FAIL"
    assert "no answer within 1 s" in result.output


def test_doctor_sees_workers_the_scheduler_and_failed_jobs(make_app, clean_redis):
    app = make_app()
    Queue(QUEUE_NAME, connection=clean_redis).enqueue("math.sqrt", -1)
    run_worker(app)
    worker = Worker([Queue(QUEUE_NAME, connection=clean_redis)], connection=clean_redis)
    worker.register_birth()
    cron = CronScheduler(connection=clean_redis, name="polku-doctor-test")
    cron.register_birth()

    result = doctor(app)

    worker.register_death()
    cron.register_death()
    found = statuses(result.output)
    assert found["workers"] == found["scheduler"] == "OK", result.output
    assert "1 worker(s) on queue 'polku'" in result.output
    assert found["failed jobs"] == "WARN"
    assert "1 job(s) failed after all their retries" in result.output
    assert "rq requeue --all --queue polku" in result.output


def test_doctor_warns_without_workers_or_scheduler(make_app, clean_redis):
    result = doctor(make_app())

    found = statuses(result.output)
    assert found["workers"] == found["scheduler"] == "WARN"
    assert "fix: start `flask --app wsgi worker`" in result.output


def test_doctor_counts_esco_concepts_and_translation_routes(
    make_app, clean_redis, esco_index, argos_files
):
    from translations.argos import install_package

    app = make_app()
    settings = app.config["POLKU"]
    settings.esco_index.write_bytes(esco_index.read_bytes())
    for name in ("uk_en", "en_fi"):
        install_package(argos_files[name], settings.packages_dir)

    result = doctor(app)

    found = statuses(result.output)
    assert found["esco"] == "OK"
    assert "17 concepts (9 occupations, 8 skills)" in result.output
    assert found["translation"] == "WARN"
    assert "into Finnish from sv, ru, ar, fa, so, et;" in result.output
    assert "translations install" in result.output


@pytest.mark.parametrize(("emptied", "schema_status"), [(False, "OK"), (True, "FAIL")])
def test_database_checks_on_each_database(app, emptied, schema_status):
    engine = get_db(app).engine
    with engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version"))
        head = head.scalar_one()
        if emptied:
            connection.execute(text("DELETE FROM alembic_version"))
    checks = [check for check in CHECKS if check.name in ("database", "schema")]

    try:
        results = list(run_checks(Context(app.config["POLKU"]), checks))
    finally:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM alembic_version"))
            connection.execute(
                text("INSERT INTO alembic_version VALUES (:head)"), {"head": head}
            )

    assert results[0].status != "FAIL", results[0]
    assert results[1].status == schema_status


def _run_flask_doctor(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONUTF8": "1",
        "POLKU_INSTANCE_PATH": str(tmp_path / "instance"),
        **environ,
    }
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "doctor"]

    return subprocess.run(  # noqa: S603 - our own command
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
    )


def test_doctor_reports_settings_that_stop_the_app_without_a_traceback(tmp_path):
    sid = "AC-not-an-account-sid"

    ran = _run_flask_doctor(
        tmp_path, TWILIO_ACCOUNT_SID=sid, TWILIO_AUTH_TOKEN=AUTH_TOKEN
    )

    assert ran.returncode == 1
    assert "Traceback" not in ran.stdout + ran.stderr
    assert statuses(ran.stdout) == {"settings": "FAIL"}
    assert "copy the one that starts with AC from the Twilio console" in ran.stdout
    assert sid not in ran.stdout


def test_doctor_hides_a_password_that_a_settings_error_quotes(tmp_path):
    ran = _run_flask_doctor(
        tmp_path, DATABASE_URL="postgres://polku:pg-secret-31@db.example/polku"
    )

    assert ran.returncode == 1
    assert "DATABASE_URL 'postgres://polku:***@db.example/polku'" in ran.stdout
    assert "pg-secret-31" not in ran.stdout + ran.stderr


def test_doctor_runs_its_checks_when_a_flow_stops_the_app(tmp_path):
    flows = tmp_path / "flows"
    (flows / "services").mkdir(parents=True)
    for path in FLOWS_DIR.glob("*.yaml"):
        (flows / path.name).write_text(path.read_text(encoding="utf-8"))
    interview = flows / "interview.yaml"
    interview.write_text(
        interview.read_text(encoding="utf-8").replace("next: age", "next: nowhere", 1)
    )
    for path in (FLOWS_DIR / "services").glob("*.yaml"):
        (flows / "services" / path.name).write_text(path.read_text(encoding="utf-8"))

    ran = _run_flask_doctor(tmp_path, FLOWS_DIR=str(flows))

    assert ran.returncode == 1
    assert "Traceback" not in ran.stdout + ran.stderr
    found = statuses(ran.stdout)
    assert found["app"] == found["flows"] == "FAIL", ran.stdout
    assert found["instance"] == "OK"
    assert "nowhere" in ran.stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["flask", "--app", "wsgi", "doctor"], True),
        (["flask", "-A", "wsgi", "--debug", "doctor", "--online"], True),
        (["flask", "--app=wsgi", "doctor"], True),
        (["flask", "--app", "doctor", "worker"], False),
        (["flask", "--app", "wsgi", "worker"], False),
        (["gunicorn", "--workers", "4", "wsgi:app"], False),
        (["flask"], False),
    ],
)
def test_doctor_is_recognised_on_the_flask_command_line(argv, expected):
    assert doctor_requested(argv) is expected
