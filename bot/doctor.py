"""`flask --app wsgi doctor`: the operator's check of the settings and every service.

Each check is a small function that looks at one thing and returns a `Result`
(OK, WARN or FAIL, what it found, what to do); `run_checks` runs them in order,
each under a time limit. Nothing is sent, and no secret or personal data is shown.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import smtplib
import sqlite3
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from bot.errors import ConfigError
from bot.settings import ACCOUNT_SID, E164, Settings, load_settings

if TYPE_CHECKING:
    from redis import Redis
    from sqlalchemy import Engine

    from flows import FlowSet

logger = logging.getLogger(__name__)

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
DEFAULT_TIMEOUT = 10.0
# The config key of the stand-in app that wsgi.py builds when create_app fails.
APP_ERROR = "POLKU_APP_ERROR"
AUTH_TOKEN = re.compile(r"^[0-9a-fA-F]{32}$")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
# RQ's own requirement.
MIN_REDIS = (5, 0)
# A worker counts when it heartbeat within this many seconds, or listens now.
WORKER_SEEN_SECONDS = 60
# RQ's cron scheduler heartbeats at least once a minute; RQ drops it after 120 s.
SCHEDULER_SEEN_SECONDS = 120
MIN_FREE_BYTES = 1024**3
SECRET_VARIABLES = (
    "SECRET_KEY",
    "ENCRYPTION_KEYS",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "SMTP_PASSWORD",
    "METRICS_TOKEN",
)
# Settings fields that hold secrets, whatever settings are added later.
SECRET_FIELD = re.compile(r"(token|password|secret|key)s?$")
URL_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "SMTP_URL",
    "OPENAI_BASE_URL",
    "TWILIO_API_URL",
    "PUBLIC_BASE_URL",
)
# A value this short would blank out ordinary words; none of ours is so short.
MIN_REDACTED = 3
FLASK_OPTIONS_WITH_VALUE = ("--app", "-A", "--env-file", "-e")


@dataclass(frozen=True)
class Result:
    """What one check found, and what to do when it is not OK."""

    name: str
    status: str
    found: str
    fix: str = ""


class Unavailable(Exception):
    """A check cannot run: what it needs is missing. Shown as SKIP with the reason."""


@dataclass
class Context:
    """What the checks share: the settings, the mode, and connections made once."""

    settings: Settings | None
    settings_error: str | None = None
    app_error: str | None = None
    online: bool = False
    # Checks that failed or were skipped: those that need them are skipped.
    down: set[str] = field(default_factory=set)
    _redis: Redis | None = None
    _engine: Engine | None = None
    _flows: FlowSet | None = None

    @property
    def config(self) -> Settings:
        if self.settings is None:
            raise Unavailable("the settings did not load")

        return self.settings

    @property
    def production(self) -> bool:
        """Polku faces the outside world: Twilio or a public address is set."""
        settings = self.settings
        return bool(settings and (settings.public_base_url or settings.twilio_enabled))

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = _engine(self.config.database_url)

        return self._engine

    def redis(self) -> Redis:
        if self._redis is None:
            from redis import Redis

            from bot.queue import redis_url

            self._redis = Redis.from_url(
                redis_url(self.config), socket_connect_timeout=3, socket_timeout=5
            )

        return self._redis

    def flows(self) -> FlowSet:
        """Read the flow files once; raise `FlowError` as the app would."""
        if self._flows is None:
            from flows import FLOWS_DIR, load_flows

            settings = self.config
            directory = settings.flows_dir or FLOWS_DIR
            self._flows = load_flows(directory, settings.teams_file)

        return self._flows

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self._redis is not None:
            self._redis.close()


@dataclass(frozen=True)
class Check:
    name: str
    function: Callable[[Context], Result]
    needs: tuple[str, ...] = ()
    online: bool = False


# -- settings and the app --------------------------------------------------------


def check_settings(context: Context) -> Result:
    """The settings load and validate, as every process loads them."""
    if context.settings_error is not None:
        return Result(
            "settings",
            FAIL,
            context.settings_error,
            "change that variable as the message says (all are listed in "
            ".env.example); no Polku process starts until then",
        )
    mode = "production" if context.production else "development"
    reason = (
        "Twilio or PUBLIC_BASE_URL is set"
        if context.production
        else "no Twilio, no PUBLIC_BASE_URL"
    )

    return Result("settings", OK, f"valid; checked as {mode} ({reason})")


def check_app(context: Context) -> Result:
    """The app builds: flows, teams and WhatsApp templates load with the settings."""
    if context.app_error is not None:
        return Result(
            "app",
            FAIL,
            f"the app cannot start: {context.app_error}",
            "fix what the message names; the web app, workers and scheduler "
            "refuse to start until then (`flask --app wsgi flows check` checks "
            "the flow files)",
        )

    return Result("app", OK, "builds: flows, teams and WhatsApp templates loaded")


# -- database --------------------------------------------------------------------


def check_database(context: Context) -> Result:
    """The database answers `SELECT 1`; SQLite is fine only off production."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    url = make_url(context.config.database_url)
    shown = url.render_as_string(hide_password=True)
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and url.database and not Path(url.database).exists():
        return Result(
            "database",
            FAIL,
            f"no SQLite database at {url.database}",
            "run `flask --app wsgi db upgrade` to create it (`serve` does at "
            "start), or correct DATABASE_URL",
        )
    query = "SELECT sqlite_version()" if sqlite else "SHOW server_version"
    try:
        with context.engine().connect() as connection:
            connection.execute(text("SELECT 1"))
            version = connection.execute(text(query)).scalar()
    except SQLAlchemyError as exc:
        return Result(
            "database",
            FAIL,
            f"{shown} does not answer: {_reason(exc.orig or exc)}",
            "start the database server, or correct DATABASE_URL (host, port, "
            "database name, user and password)",
        )
    if sqlite and context.production:
        return Result(
            "database",
            WARN,
            f"SQLite {version} at {url.database} answers",
            "SQLite serves one machine and a few workers; in production set "
            "DATABASE_URL=postgresql://… and run `flask --app wsgi db upgrade`",
        )
    kind = "SQLite" if sqlite else "PostgreSQL"

    return Result("database", OK, f"{kind} {version} at {shown} answers")


def check_schema(context: Context) -> Result:
    """The schema is at the newest migration this release ships."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from bot.schema import alembic_config

    engine = context.engine()
    script = ScriptDirectory.from_config(alembic_config(engine))
    heads = set(script.get_heads())
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    newest = ", ".join(sorted(heads))
    upgrade = (
        "run `flask --app wsgi db upgrade` (on every release, before the new "
        "workers start)"
    )
    if current == heads:
        return Result("schema", OK, f"at the newest revision, {newest}")
    if not current:
        return Result("schema", FAIL, "the database has no Polku schema yet", upgrade)
    try:
        for revision in current:
            script.get_revision(revision)
    except CommandError:
        return Result(
            "schema",
            FAIL,
            f"at revision {', '.join(sorted(current))}, which this release does not "
            "know: a newer release migrated it",
            "deploy the release that migrated it, or restore the backup taken "
            "before that release",
        )

    return Result(
        "schema",
        FAIL,
        f"at revision {', '.join(sorted(current))}; this release needs {newest}",
        upgrade,
    )


# -- Redis and the workers -------------------------------------------------------


def check_redis(context: Context) -> Result:
    """Redis answers PING and is new enough for RQ; the embedded one is noted."""
    from redis.exceptions import RedisError

    from bot.queue import redis_url

    settings = context.config
    shown = _shown_url(redis_url(settings))
    embedded = settings.uses_embedded_redis
    if embedded and not settings.embedded_redis_socket.exists():
        return _embedded_redis_down(context)
    try:
        connection = context.redis()
        connection.ping()
        version = str(connection.info("server")["redis_version"])
    except RedisError as exc:
        if embedded:
            return _embedded_redis_down(context)
        return Result(
            "redis",
            FAIL,
            f"{shown} does not answer PING: {_reason(exc)}",
            "start Redis, or correct REDIS_URL; meanwhile messages are stored "
            "and the sweep queues them when Redis is back",
        )
    if _version(version) < MIN_REDIS:
        return Result(
            "redis",
            FAIL,
            f"Redis {version} at {shown}: RQ needs Redis 5 or newer",
            "upgrade Redis, or point REDIS_URL at a newer one",
        )
    if embedded:
        found = f"the embedded Redis {version} answers at {shown}"
        if context.production:
            return Result("redis", WARN, found, _REDIS_SERVICE)
        return Result("redis", OK, found)

    return Result("redis", OK, f"Redis {version} at {shown} answers PING")


_REDIS_SERVICE = (
    "in production run Redis as a service with persistence and set REDIS_URL "
    "for the web app, the workers and the scheduler alike"
)


def _embedded_redis_down(context: Context) -> Result:
    # Not an error: the first Polku process that needs it starts it. The checks
    # that read Redis are skipped.
    context.down.add("redis")
    found = (
        "REDIS_URL is not set, and the embedded Redis "
        f"({context.config.embedded_redis_socket}) is not running now"
    )
    if context.production:
        return Result("redis", WARN, found, _REDIS_SERVICE)

    return Result(
        "redis", OK, found + "; `flask --app wsgi serve` or the first worker starts it"
    )


def check_redis_persistence(context: Context) -> Result:
    """AOF or RDB is on, so that queued jobs survive a Redis restart."""
    connection = context.redis()
    config = _redis_config(connection, "appendonly", "save")
    if config is None:
        info = connection.info("persistence")
        aof = bool(info.get("aof_enabled"))
        found = f"AOF {'on' if aof else 'off'} (CONFIG is not allowed; RDB unknown)"
        if aof:
            return Result("redis persistence", OK, found)
        return Result(
            "redis persistence",
            WARN,
            found,
            "ask the Redis provider whether snapshots (RDB) or the append-only "
            "file (AOF) are on",
        )
    aof = config.get("appendonly") == "yes"
    save = (config.get("save") or "").strip()
    found = f"AOF {'on' if aof else 'off'}, RDB snapshots {save or 'off'}"
    if aof or save:
        return Result("redis persistence", OK, found)

    return Result(
        "redis persistence",
        WARN,
        found + ": queued jobs vanish when Redis restarts (the sweep queues "
        "again from the database what is pending, within a minute)",
        "set `appendonly yes` (or `save 60 1`) in redis.conf and restart Redis",
    )


def check_redis_eviction(context: Context) -> Result:
    """A full Redis must refuse writes, not evict queued jobs and locks."""
    config = _redis_config(context.redis(), "maxmemory", "maxmemory-policy")
    if config is None:
        return Result("redis memory", OK, "CONFIG is not allowed; not checked")
    limit = int(config.get("maxmemory") or 0)
    policy = config.get("maxmemory-policy") or "noeviction"
    if limit == 0 or policy == "noeviction":
        shown = f"{limit / 1024**2:.0f} MB" if limit else "no limit"
        return Result("redis memory", OK, f"maxmemory {shown}, policy {policy}")

    return Result(
        "redis memory",
        WARN,
        f"maxmemory-policy {policy}: when full, Redis drops queued jobs and "
        "per-client locks",
        "set `maxmemory-policy noeviction` in redis.conf",
    )


def check_workers(context: Context) -> Result:
    """RQ workers listen on Polku's queue, seen within the last minute."""
    from rq import Queue, Worker

    from bot.queue import QUEUE_NAME

    connection = context.redis()
    queue = Queue(QUEUE_NAME, connection=connection)
    # RQ keeps an idle worker's entry for minutes after its last heartbeat (one
    # every ~7 minutes while idle), so a worker counts when it beat within the
    # minute or is subscribed to its command channel right now.
    seen = [
        worker for worker in Worker.all(queue=queue) if _worker_seen(connection, worker)
    ]
    waiting = len(queue)
    if not seen:
        return Result(
            "workers",
            WARN,
            f"no worker seen on queue {QUEUE_NAME!r} in the last minute; "
            f"{waiting} job(s) waiting",
            "start `flask --app wsgi worker` (as many as there are cores to "
            "spare); messages are stored and wait for one",
        )
    busy = sum(1 for worker in seen if worker.get_state() == "busy")

    return Result(
        "workers",
        OK,
        f"{len(seen)} worker(s) on queue {QUEUE_NAME!r}, {busy} busy; "
        f"{waiting} job(s) waiting",
    )


def check_scheduler(context: Context) -> Result:
    """One `flask scheduler` runs the sweep, reminders, lessons and retention."""
    from rq.cron_scheduler_registry import get_registry_key

    beats = context.redis().zrange(get_registry_key(), 0, -1, withscores=True)
    cutoff = time.time() - SCHEDULER_SEEN_SECONDS
    names = [
        _text(name)
        for name, beat in beats
        if _text(name).startswith("polku-") and beat >= cutoff
    ]
    if not names:
        return Result(
            "scheduler",
            WARN,
            f"no `flask --app wsgi scheduler` seen in the last "
            f"{SCHEDULER_SEEN_SECONDS} s: the sweep, reminders, lessons and "
            "retention do not run",
            "run one `flask --app wsgi scheduler` process (`serve` starts one)",
        )

    return Result("scheduler", OK, f"{len(names)} scheduler(s) seen")


def check_failed_jobs(context: Context) -> Result:
    """Jobs that failed after all their retries wait in RQ's failed registry."""
    from rq import Queue

    from bot.queue import QUEUE_NAME

    queue = Queue(QUEUE_NAME, connection=context.redis())
    failed = queue.failed_job_registry.get_job_count(cleanup=False)
    if not failed:
        return Result("failed jobs", OK, "none")

    return Result(
        "failed jobs",
        WARN,
        f"{failed} job(s) failed after all their retries (kept 30 days)",
        f'`rq info --url "$REDIS_URL"` shows them; after fixing the cause, '
        f'`rq requeue --all --queue {QUEUE_NAME} --url "$REDIS_URL"` retries them',
    )


# -- Twilio ----------------------------------------------------------------------


def check_twilio(context: Context) -> Result:
    """The Twilio credentials and senders are well-formed (no call is made)."""
    settings = context.config
    sid, token = settings.twilio_account_sid, settings.twilio_auth_token
    if not sid and not token:
        return Result("twilio", OK, "not configured: no SMS or WhatsApp, web chat only")
    problems: list[tuple[str, str]] = []
    if not sid or not ACCOUNT_SID.match(sid):
        problems.append(
            (
                "TWILIO_ACCOUNT_SID is not AC and 32 hexadecimal digits",
                "copy the Account SID from the Twilio console's dashboard",
            )
        )
    if not token or not AUTH_TOKEN.match(token):
        length = len(token or "")
        problems.append(
            (
                f"TWILIO_AUTH_TOKEN is not 32 hexadecimal digits ({length} characters)",
                "copy the Auth Token from the Twilio console (Account > API keys "
                "& tokens), not an API key's secret",
            )
        )
    senders = {
        "TWILIO_SMS_FROM": settings.twilio_sms_from,
        "TWILIO_WHATSAPP_FROM": settings.twilio_whatsapp_from,
    }
    for name, number in senders.items():
        if number and not E164.match(number):
            problems.append(
                (
                    f"{name} {number} is not in E.164 form",
                    f"write {name} like +358401234567",
                )
            )
    if problems:
        found, fixes = zip(*problems, strict=True)
        return Result("twilio", FAIL, "; ".join(found), "; ".join(fixes))
    if not any(senders.values()):
        return Result(
            "twilio",
            WARN,
            "credentials set, but no sender: nothing can be sent",
            "set TWILIO_SMS_FROM=+358… and/or TWILIO_WHATSAPP_FROM=whatsapp:+358…",
        )
    shown = ", ".join(f"{name} {number}" for name, number in senders.items() if number)

    return Result(
        "twilio", OK, f"account {_masked_sid(sid or '')}, auth token set; {shown}"
    )


def check_public_url(context: Context) -> Result:
    """PUBLIC_BASE_URL is set and https when Twilio calls Polku."""
    settings = context.config
    url = settings.public_base_url
    if not url:
        if not settings.twilio_enabled:
            return Result(
                "public url",
                OK,
                "not set: fine without Twilio (links use the address each "
                "request arrives on)",
            )
        return Result(
            "public url",
            WARN,
            "PUBLIC_BASE_URL is not set: Twilio's signatures are checked against "
            "the address each request arrives on (behind a proxy every webhook "
            "gets 403), and no delivery status comes back",
            "set PUBLIC_BASE_URL to the https address Twilio calls, like "
            "https://polku.mikkeli.fi",
        )
    parts = urlsplit(url)
    if parts.scheme == "https":
        return Result("public url", OK, f"{_shown_url(url)}")
    if parts.hostname in LOCAL_HOSTS:
        return Result(
            "public url",
            WARN,
            f"{_shown_url(url)}: Twilio cannot reach this machine's own address",
            "set PUBLIC_BASE_URL to the public https address Twilio calls",
        )

    return Result(
        "public url",
        FAIL,
        f"{_shown_url(url)} is not https: clients' messages and the counsellor "
        "page would travel unencrypted",
        "serve Polku over TLS behind a proxy and set PUBLIC_BASE_URL=https://…",
    )


def check_twilio_account(context: Context) -> Result:
    """Twilio accepts the credentials and the account is active (--online)."""
    from requests import RequestException
    from twilio.base.exceptions import TwilioException, TwilioRestException
    from twilio.rest import Client

    from bot.channels.twilio import RebasedHttpClient

    settings = context.config
    if not settings.twilio_enabled:
        return Result("twilio account", OK, "not configured: nothing to call")
    sid = settings.twilio_account_sid or ""
    http = RebasedHttpClient(settings.twilio_api_url, settings.twilio_timeout)
    client = Client(sid, settings.twilio_auth_token, http_client=http)
    try:
        account = client.api.v2010.accounts(sid).fetch()
    except TwilioRestException as exc:
        if exc.status in (401, 403, 404):
            return Result(
                "twilio account",
                FAIL,
                f"Twilio refused the credentials (HTTP {exc.status}, error {exc.code})",
                "copy TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN again from the "
                "Twilio console",
            )
        return Result(
            "twilio account",
            FAIL,
            f"Twilio answered HTTP {exc.status} (error {exc.code})",
            "try again later; Twilio's status page says whether it is down",
        )
    except (TwilioException, RequestException) as exc:
        return Result(
            "twilio account",
            FAIL,
            f"{_shown_url(settings.twilio_api_url)} could not be reached: "
            f"{type(exc).__name__}",
            "check TWILIO_API_URL and that this host may make outbound HTTPS calls",
        )
    if account.status != "active":
        return Result(
            "twilio account",
            FAIL,
            f"the account is {account.status}",
            "nothing can be sent until the account is active again; see the "
            "Twilio console",
        )

    return Result(
        "twilio account",
        OK,
        f"{_shown_url(settings.twilio_api_url)} accepted the credentials; the "
        "account is active",
    )


# -- e-mail and teams ------------------------------------------------------------


def check_smtp(context: Context) -> Result:
    """The mail server answers EHLO, STARTTLS, login and NOOP; nothing is sent."""
    from bot.mail import parse_smtp_url

    settings = context.config
    if not settings.smtp_url:
        found = f"SMTP_URL is not set: handoff e-mails go to {settings.outbox}"
        if context.production:
            return Result(
                "smtp",
                WARN,
                found + ", and no counsellor receives them",
                "set SMTP_URL (smtp+starttls://mail.example.fi:587), SMTP_USER, "
                "SMTP_PASSWORD and MAIL_FROM",
            )
        return Result("smtp", OK, found)
    server = parse_smtp_url(
        settings.smtp_url, settings.smtp_user, settings.smtp_password
    )
    where = f"{server.host}:{server.port}"
    steps: list[str] = []
    try:
        _smtp_handshake(server, steps)
    except (OSError, smtplib.SMTPException) as exc:
        step = steps[-1] if steps else "connect"
        return Result(
            "smtp",
            FAIL,
            f"{where}: {step} failed: {_smtp_reason(exc)}",
            _smtp_fix(exc, server.host),
        )

    return Result("smtp", OK, f"{where} answers: {', '.join(steps)} passed")


def _smtp_handshake(server: Any, steps: list[str]) -> None:
    timeout = min(server.timeout, 5.0)
    context = ssl.create_default_context()
    steps.append("connect")
    if server.security == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            server.host, server.port, timeout=timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=timeout)
    with smtp:
        steps.append("EHLO")
        smtp.ehlo()
        if server.security == "starttls":
            steps.append("STARTTLS")
            smtp.starttls(context=context)
            smtp.ehlo()
        if server.user:
            steps.append("login")
            smtp.login(server.user, server.password)
        steps.append("NOOP")
        code, _ = smtp.noop()
        if code != 250:
            raise smtplib.SMTPResponseException(code, b"")


def _smtp_reason(exc: BaseException) -> str:
    # The class and code only: a server's reply may quote addresses.
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__} {exc.smtp_code}"

    return type(exc).__name__


def _smtp_fix(exc: BaseException, host: str) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "check SMTP_USER and SMTP_PASSWORD"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return (
            "the server does not offer this (STARTTLS or login) here; check "
            "SMTP_URL's scheme and port (smtp+starttls:// 587, smtps:// 465)"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"the server's certificate must be valid for {host}, and the scheme "
            "must fit the port (smtps:// 465, smtp+starttls:// 587)"
        )

    return (
        "check SMTP_URL's host and port, that the server runs, and that the "
        "firewall lets this host reach it"
    )


def check_teams(context: Context) -> Result:
    """The counsellor teams have real addresses, not the shipped placeholders."""
    settings = context.config
    teams = context.flows().teams
    where = str(settings.teams_file or "flows/teams.yaml")
    if teams is None:
        return Result(
            "teams",
            WARN,
            "no teams file: handoffs cannot be routed to counsellors",
            "copy flows/teams.yaml, write the teams' addresses, set TEAMS_FILE",
        )
    # The same test the app makes before it accepts SMTP_URL.
    unset = [team.id for team in teams.teams.values() if team.unset]
    fix = f"write the teams' real addresses in {where} (or a copy TEAMS_FILE names)"
    if unset and settings.smtp_url:
        return Result(
            "teams",
            FAIL,
            f"{len(unset)} team(s) still have placeholder addresses "
            f"({', '.join(unset)}), and SMTP_URL is set: Polku refuses to start",
            fix,
        )
    if unset:
        return Result(
            "teams",
            WARN,
            f"{len(unset)} team(s) still have placeholder addresses "
            f"({', '.join(unset)}): handoffs stay in the outbox",
            fix,
        )

    return Result("teams", OK, f"{len(teams.teams)} teams with addresses, in {where}")


# -- translation, ESCO, flows ------------------------------------------------------


def check_translation(context: Context) -> Result:
    """Argos can translate every client language into Finnish and back."""
    from translations import LANGUAGES
    from translations.argos import installed_packages, route

    settings = context.config
    if settings.translator == "none":
        return Result(
            "translation",
            OK,
            "TRANSLATOR=none: clients' free text reaches counsellors untranslated, "
            "marked so",
        )
    packages = installed_packages(settings.packages_dir)
    pairs = {package.pair for package in packages}
    others = [language.code for language in LANGUAGES if language.code != "fi"]
    into = [code for code in others if route(pairs, code, "fi") is None]
    out = [code for code in others if route(pairs, "fi", code) is None]
    found = f"{len(packages)} Argos package(s) in {settings.packages_dir}"
    if not into and not out:
        return Result(
            "translation", OK, found + "; every language reaches Finnish and back"
        )
    missing = []
    if into:
        missing.append(f"into Finnish from {', '.join(into)}")
    if out:
        missing.append(f"from Finnish into {', '.join(out)}")

    return Result(
        "translation",
        WARN,
        f"{found}; no route {'; none '.join(missing)}: those texts go "
        "untranslated, marked so",
        "copy the .argosmodel files of those pairs (Argos pivots through English: "
        "uk->en and en->fi serve Ukrainian) and run `flask --app wsgi translations "
        "install FILE…`; `flask --app wsgi translations status` shows the routes",
    )


def check_esco(context: Context) -> Result:
    """The ESCO index exists and reads, with its concepts and embeddings."""
    from esco.index import index_status

    path = context.config.esco_index
    fix = (
        "download ESCO's CSV package (fi, sv, en) and run `flask --app wsgi esco "
        "import FOLDER…`"
    )
    try:
        status = index_status(path)
    except sqlite3.Error as exc:
        return Result(
            "esco", FAIL, f"{path} is not a readable ESCO index: {_reason(exc)}", fix
        )
    if status is None:
        return Result(
            "esco",
            WARN,
            f"no ESCO index at {path}: jobs and skills stay in the client's words",
            fix,
        )
    found = (
        f"ESCO {status.version} ({', '.join(status.languages)}): "
        f"{status.occupations + status.skills} concepts ({status.occupations} "
        f"occupations, {status.skills} skills), {status.embedded} labels embedded"
    )
    if not status.embedded:
        return Result(
            "esco",
            WARN,
            found + ": matching is by spelling only",
            "run `flask --app wsgi esco import` again without --no-embeddings",
        )

    return Result("esco", OK, found)


def check_flows(context: Context) -> Result:
    """The flow files load and check, as `flows check` reads them."""
    from flows import FLOWS_DIR
    from flows.model import FlowError

    directory = context.config.flows_dir or FLOWS_DIR
    try:
        flows = context.flows()
    except FlowError as exc:
        return Result(
            "flows",
            FAIL,
            str(exc),
            "correct the file and step named; `flask --app wsgi flows check` "
            "checks again (the app refuses to start until then)",
        )
    steps = sum(len(flow.steps) for flow in flows.flows.values())
    unchecked = sum(len(service.check) for service in flows.rules.services.values())
    found = (
        f"{len(flows.flows)} flow(s), {steps} steps, {len(flows.rules.rules)} rules, "
        f"{len(flows.rules.services)} services in {directory}"
    )
    if unchecked:
        return Result(
            "flows",
            WARN,
            f"{found}; {unchecked} facts about services await the city's check",
            "confirm each fact and remove it from its service's `check:` list in "
            "flows/services/",
        )

    return Result("flows", OK, found)


def check_course(context: Context) -> Result:
    """The course file loads; its local and yearly facts are counted."""
    course = context.flows().course
    if course is None:
        return Result("course", OK, "no course file: the course is not offered")
    marked = sum(
        len(lesson.check_locally) + len(lesson.check_current)
        for lesson in course.lessons
    )

    return Result(
        "course",
        OK,
        f"{len(course.lessons)} lessons; {marked} texts hold local or yearly facts "
        "(`flask --app wsgi course check` lists them before each course)",
    )


def check_templates(context: Context) -> Result:
    """Each WhatsApp template has a real ContentSid, not the shipped placeholder."""
    from bot.channels import templates_file
    from bot.channels.templates import load_templates

    settings = context.config
    path = templates_file(settings)
    try:
        templates = load_templates(path)
    except ConfigError as exc:
        return Result(
            "whatsapp templates", FAIL, str(exc), f"correct {path} as it says"
        )
    if not settings.twilio_whatsapp_from:
        return Result(
            "whatsapp templates", OK, "not used: TWILIO_WHATSAPP_FROM is not set"
        )
    unset = sorted(name for name, item in templates.items() if not item.sid_for("en"))
    if unset:
        return Result(
            "whatsapp templates",
            WARN,
            f"{len(unset)} of {len(templates)} have only placeholder ContentSids "
            f"({', '.join(unset)}): outside WhatsApp's 24-hour window those "
            "lessons are held",
            "have the templates approved in Twilio's Content Template Builder and "
            f"write their ContentSids in {path} (or WHATSAPP_TEMPLATES_FILE)",
        )

    return Result("whatsapp templates", OK, f"{len(templates)} with ContentSids")


# -- language model ----------------------------------------------------------------


def check_llm(context: Context) -> Result:
    """With OPENAI_API_KEY, a model and a server address fit to be used."""
    settings = context.config
    if not settings.llm_enabled:
        return Result("llm", OK, "no OPENAI_API_KEY: deterministic mode, no model")
    base = settings.openai_base_url
    shown = _shown_url(base) if base else "OpenAI's default address"
    found = (
        f"model {settings.llm_model} at {shown}, key set; {settings.llm_timeout:g} s "
        f"per call, {settings.llm_max_retries} retries"
    )
    parts = urlsplit(base or "https://api.openai.com")
    if parts.scheme != "https" and parts.hostname not in LOCAL_HOSTS:
        return Result(
            "llm",
            WARN,
            found + ": anonymised client text would travel unencrypted",
            "use the server's https:// address in OPENAI_BASE_URL",
        )

    return Result("llm", OK, found)


def check_llm_call(context: Context) -> Result:
    """The model answers a one-word probe (--online); no client text is sent."""
    from bot.llm import PROBE, BackendError
    from bot.llm_openai import OpenAICompatible

    settings = context.config
    if not settings.llm_enabled:
        return Result("llm call", OK, "deterministic mode: nothing to call")
    backend = OpenAICompatible(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key,
        model=settings.llm_model,
        timeout=settings.llm_timeout,
        max_retries=0,
    )
    began = time.monotonic()
    try:
        completion = backend.chat(PROBE.messages(), None)
    except BackendError as exc:
        return Result(
            "llm call",
            FAIL,
            f"{settings.llm_model} did not answer: {exc}",
            "check OPENAI_BASE_URL, LLM_MODEL and OPENAI_API_KEY; until it "
            "answers, Polku works as in deterministic mode",
        )
    finally:
        backend.client.close()
    seconds = time.monotonic() - began
    version = completion.model_version or settings.llm_model

    return Result("llm call", OK, f"{version} answered in {seconds:.1f} s")


# -- keys and the instance folder ------------------------------------------------


def check_keys(context: Context) -> Result:
    """SECRET_KEY and ENCRYPTION_KEYS are present, long enough and kept private."""
    settings = context.config
    instance = settings.instance_path
    generated = [
        name
        for name, value in (
            ("secret_key", settings.secret_key),
            ("encryption_key", settings.encryption_keys[0]),
        )
        if _read(instance / name) == value
    ]
    found = (
        f"SECRET_KEY set ({len(settings.secret_key)} characters); ENCRYPTION_KEYS "
        f"set ({len(settings.encryption_keys)} key(s), the first encrypts)"
    )
    if generated:
        found += f"; generated in {instance} ({', '.join(generated)})"
    exposed = [name for name in generated if (instance / name).stat().st_mode & 0o077]
    if exposed:
        paths = " ".join(str(instance / name) for name in exposed)
        return Result(
            "keys", WARN, found + ": readable by other users", f"chmod 600 {paths}"
        )
    if len(settings.secret_key) < 32:
        return Result(
            "keys",
            WARN,
            found + ": SECRET_KEY is short",
            "before going live, set SECRET_KEY to 32 or more random characters; "
            "once clients exist it must never change (it keys their number hashes)",
        )
    if generated and context.production:
        return Result(
            "keys",
            WARN,
            found,
            "set SECRET_KEY and ENCRYPTION_KEYS in every process's environment to "
            "the values in those files (never new ones), or share the folder",
        )

    return Result("keys", OK, found)


def check_instance(context: Context) -> Result:
    """The instance folder is writable and has room."""
    path = context.config.instance_path
    if not path.is_dir():
        return Result(
            "instance",
            FAIL,
            f"{path} does not exist",
            f"create it, owned by the user Polku runs as: mkdir -p {path}",
        )
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Result(
            "instance",
            FAIL,
            f"{path} is not writable by user {os.getuid()}: {exc.strerror}",
            "make it the Polku user's (chown); the outbox, the embedded Redis, the "
            "ESCO index and the Argos packages live there",
        )
    free = shutil.disk_usage(path).free
    found = f"{path} is writable; {free / 1024**3:.1f} GB free"
    if free < MIN_FREE_BYTES:
        return Result(
            "instance",
            WARN,
            found,
            "free some space: the database, outbox and packages grow there",
        )

    return Result("instance", OK, found)


CHECKS: tuple[Check, ...] = (
    Check("settings", check_settings),
    Check("app", check_app),
    Check("database", check_database),
    Check("schema", check_schema, needs=("database",)),
    Check("redis", check_redis),
    Check("redis persistence", check_redis_persistence, needs=("redis",)),
    Check("redis memory", check_redis_eviction, needs=("redis",)),
    Check("workers", check_workers, needs=("redis",)),
    Check("scheduler", check_scheduler, needs=("redis",)),
    Check("failed jobs", check_failed_jobs, needs=("redis",)),
    Check("twilio", check_twilio),
    Check("public url", check_public_url),
    Check("twilio account", check_twilio_account, needs=("twilio",), online=True),
    Check("smtp", check_smtp),
    Check("flows", check_flows),
    Check("teams", check_teams, needs=("flows",)),
    Check("course", check_course, needs=("flows",)),
    Check("whatsapp templates", check_templates),
    Check("translation", check_translation),
    Check("esco", check_esco),
    Check("llm", check_llm),
    Check("llm call", check_llm_call, needs=("llm",), online=True),
    Check("keys", check_keys),
    Check("instance", check_instance),
)


# -- the runner --------------------------------------------------------------------


def run_checks(
    context: Context, checks: Sequence[Check] = CHECKS, timeout: float = DEFAULT_TIMEOUT
) -> Iterator[Result]:
    """Run `checks` in order, each for at most `timeout` seconds; yield each result.

    Without settings only their FAIL is given: nothing else can be checked. A
    check whose `needs` failed is skipped. A check that overruns is reported as
    FAIL and left to finish in the background.
    """
    if context.settings is None:
        yield check_settings(context)
        return
    for check in checks:
        if check.online and not context.online:
            continue
        blocked = [name for name in check.needs if name in context.down]
        if blocked:
            result = Result(check.name, SKIP, f"not checked: needs {blocked[0]}")
        else:
            result = _run_one(check, context, timeout)
        if result.status in (FAIL, SKIP):
            context.down.add(check.name)
        yield result


def _run_one(check: Check, context: Context, timeout: float) -> Result:
    outcome: list[Result] = []

    def run() -> None:
        try:
            outcome.append(check.function(context))
        except Unavailable as exc:
            outcome.append(Result(check.name, SKIP, f"not checked: {exc}"))
        except Exception as exc:
            logger.debug("doctor: check %s raised", check.name, exc_info=True)
            outcome.append(
                Result(check.name, FAIL, f"the check raised {_reason(exc)}", "")
            )

    # A daemon thread: a check stuck on a dead host must not keep the command
    # from ending.
    worker = threading.Thread(target=run, name=f"doctor {check.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return Result(
            check.name,
            FAIL,
            f"no answer within {timeout:g} s",
            "what this check calls is slow or unreachable; `--timeout 30` waits longer",
        )

    return outcome[0]


def make_context(app: Flask, online: bool = False) -> Context:
    """Gather the settings of `app`, or read them when the app could not be built."""
    settings: Settings | None = app.config.get("POLKU")
    app_error = app.config.get(APP_ERROR)
    settings_error = None
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            settings_error = str(exc)

    return Context(settings, settings_error, app_error, online)


# -- what is shown -------------------------------------------------------------------


class Redactor:
    """Replace every secret value found in a text with `***`."""

    def __init__(self, values: set[str]):
        usable = {value for value in values if len(value) >= MIN_REDACTED}
        self.values = sorted(usable, key=len, reverse=True)

    @classmethod
    def of(cls, settings: Settings | None, environ: Any = os.environ) -> Redactor:
        values: set[str] = set()
        for name in SECRET_VARIABLES:
            values.update(part.strip() for part in environ.get(name, "").split(","))
        for name in URL_VARIABLES:
            values.update(_url_secrets(environ.get(name, "")))
        if settings is not None:
            values.add(settings.twilio_account_sid or "")
            for item in fields(settings):
                value = getattr(settings, item.name)
                if SECRET_FIELD.search(item.name) and value:
                    values.update([value] if isinstance(value, str) else value)
            for url in (
                settings.database_url,
                settings.redis_url,
                settings.smtp_url,
                settings.openai_base_url,
            ):
                values.update(_url_secrets(url or ""))

        return cls(values)

    def clean(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, "***")

        return text


def format_result(result: Result, redactor: Redactor) -> str:
    """Return the result's lines: status, name, what was found; then the fix."""
    colours = {OK: "green", WARN: "yellow", FAIL: "red", SKIP: "blue"}
    status = click.style(f"{result.status:<4}", fg=colours[result.status], bold=True)
    lines = [f"{status}  {result.name:<18}  {redactor.clean(result.found)}"]
    if result.fix and result.status != OK:
        lines.append(f"{'':26}fix: {redactor.clean(result.fix)}")

    return "\n".join(lines)


@click.command("doctor")
@click.option(
    "--online",
    is_flag=True,
    help="Also call Twilio's account API and the language model (nothing is sent).",
)
@click.option(
    "--timeout",
    default=DEFAULT_TIMEOUT,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds each check may take.",
)
@with_appcontext
def doctor_command(online: bool, timeout: float) -> None:
    """Check the settings and every service Polku uses; exit 1 if any check fails."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    context = make_context(app, online)
    redactor = Redactor.of(context.settings)
    counts: Counter[str] = Counter()
    try:
        for result in run_checks(context, CHECKS, timeout):
            counts[result.status] += 1
            click.echo(format_result(result, redactor))
    finally:
        context.close()
    summary = ", ".join(f"{counts[s]} {s}" for s in (FAIL, WARN, SKIP, OK) if counts[s])
    click.echo(f"doctor: {summary}")
    if counts[FAIL]:
        raise SystemExit(1)


def doctor_requested(argv: Sequence[str]) -> bool:
    """True when the command line runs the doctor: `flask [options] doctor …`."""
    words = iter(argv[1:])
    for word in words:
        if word in FLASK_OPTIONS_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            return word == "doctor"

    return False


def rescue_app(error: Exception) -> Flask:
    """Return a stand-in app that can only run the doctor, which reports `error`.

    wsgi.py uses it when create_app fails and the doctor was asked for: the
    operator then gets the same FAIL as the checks give, not a traceback.
    """
    app = Flask(__name__)
    message = str(error) if isinstance(error, ConfigError) else _reason(error)
    app.config[APP_ERROR] = message
    app.cli.add_command(doctor_command)

    return app


# -- small helpers ---------------------------------------------------------------


def _engine(url: str) -> Engine:
    """An engine without a pool that waits a few seconds at most to connect."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    parsed = make_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        options = {"connect_timeout": 5}
        if parsed.drivername == "postgresql":
            # Plain postgresql:// means psycopg 3 here, as in bot/db.py.
            parsed = parsed.set(drivername="postgresql+psycopg")

    return create_engine(parsed, poolclass=NullPool, connect_args=options)


def _redis_config(connection: Redis, *names: str) -> dict[str, str] | None:
    """Read CONFIG values; None where the server forbids CONFIG (managed Redis)."""
    from redis.exceptions import ResponseError

    values: dict[str, str] = {}
    try:
        for name in names:
            values.update(
                {_text(k): _text(v) for k, v in connection.config_get(name).items()}
            )
    except ResponseError:
        return None

    return values


def _worker_seen(connection: Redis, worker: Any) -> bool:
    beat = worker.last_heartbeat
    if beat is not None:
        age = dt.datetime.now(dt.UTC) - beat.replace(tzinfo=dt.UTC)
        if age.total_seconds() <= WORKER_SEEN_SECONDS:
            return True
    listening = connection.pubsub_numsub(worker.pubsub_channel_name)

    return bool(listening and listening[0][1])


def _shown_url(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""

    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _url_secrets(url: str) -> set[str]:
    try:
        password = urlsplit(url).password
    except ValueError:
        return set()
    if not password:
        return set()

    return {password, unquote(password)}


def _masked_sid(sid: str) -> str:
    return f"{sid[:2]}…{sid[-4:]}" if len(sid) > 8 else "***"


def _reason(exc: BaseException) -> str:
    """The exception's class and the first line of its message, shortened."""
    lines = str(exc).strip().splitlines()
    first = lines[0][:200] if lines else ""

    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
