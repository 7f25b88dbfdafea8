"""The database connection: one SQLAlchemy engine per app, sessions per unit of work.

The database is the source of truth for clients, conversations and messages; Redis
only carries ids. Webhooks, workers and the CLI open short explicit transactions.
While it is unreachable, requests are answered 503 with Retry-After (nothing is
half-written; Twilio retries); pooled connections are checked before each use.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Response, jsonify, request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from bot import metrics

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger(__name__)

# The database is down, restarting, unreachable or out of connections: nothing
# is wrong with the request or the data, and the same work succeeds later.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, PoolTimeoutError)
# What a 503 asks the caller to wait; Twilio and the web chat try again.
RETRY_AFTER_SECONDS = 30
# A PostgreSQL server that does not answer must not hold a webhook for long
# (Twilio waits 15 s for its answer).
CONNECT_TIMEOUT_SECONDS = 5

metrics.describe(
    "polku_failures_total",
    "Failures an operator should know of, by kind: database (a request answered "
    "503), twilio_send (a reply not sent after its last try), llm (a model call "
    "that failed or timed out), handoff_mail and question_mail (an e-mail try).",
)


class Database:
    """An engine and a session factory for one database URL."""

    def __init__(self, url: str):
        self.url = url
        self.engine = _create_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # A forked RQ work horse must not share pooled connections with its
        # parent: drop the inherited ones without closing the parent's sockets.
        os.register_at_fork(after_in_child=self._after_fork)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Yield a session inside a transaction that commits on success."""
        with self._sessions() as session, session.begin():
            yield session

    def session(self) -> Session:
        """Return a new session; the caller closes it."""
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()

    def _after_fork(self) -> None:
        self.engine.dispose(close=False)


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": 30}
    if (
        parsed.get_backend_name() == "postgresql"
        and "connect_timeout" not in parsed.query
    ):
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # Plain postgresql:// means psycopg 3 here, the driver we install.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(
            hide_password=False
        )
    engine = create_engine(url, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)

    return engine


def _configure_sqlite(connection: Any, _record: Any) -> None:
    # WAL lets the web app read while a worker writes; the busy timeout makes
    # concurrent writers wait instead of failing.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # Under WAL, NORMAL syncs at checkpoints, not at every commit: a power cut
    # may lose the last commits, a crashed process loses nothing.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def init_app(app: Flask) -> None:
    app.extensions["polku.db"] = Database(app.config["POLKU"].database_url)
    for error in UNAVAILABLE_ERRORS:
        app.register_error_handler(error, database_unavailable)


def database_unavailable(error: Exception) -> Response:
    """Answer 503 with Retry-After when the database cannot be reached.

    The transaction was rolled back, so nothing is half-written; Twilio sends
    the webhook again (same MessageSid, stored once). Only the error's kind is
    logged: its text may quote SQL parameters.
    """
    cause = type(getattr(error, "orig", None) or error).__name__
    logger.warning(
        "database unavailable on %s %s: %s", request.method, request.path, cause
    )
    metrics.count("polku_failures_total", kind="database")
    message = "the database is not reachable just now; try again shortly"
    if request.path.startswith("/chat/"):
        response = jsonify(error=message)
    else:
        response = Response(
            f"503 Service Unavailable: {message}\n", mimetype="text/plain"
        )
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)

    return response


def get_db(app: Flask | None = None) -> Database:
    """Return the database of `app` (default: the current app)."""
    if app is None:
        from flask import current_app

        app = current_app

    return app.extensions["polku.db"]
