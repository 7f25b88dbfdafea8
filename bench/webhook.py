"""Benchmark the Twilio webhook against a bare endpoint, both in one gunicorn server.

Run: python bench/webhook.py [--requests N] [--concurrency C] [--database-url URL]
[--redis-url URL]; it only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gunicorn
from flask import Flask, Response, request
from rq.rate_limit import RateLimitRegistry
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator

from bot import create_app, schema
from bot.db import get_db
from bot.messaging import INBOUND
from bot.models import Message
from bot.queue import get_queue
from bot.webhooks import EMPTY_TWIML

ROOT = Path(__file__).resolve().parents[1]
BARE_PATH = "/bench/bare"
WEBHOOK_PATH = "/twilio/messages"
WORKERS, THREADS = 2, 4
ROUNDS = 10
CLIENTS = 100
SMS_FROM = "+358401110000"
# Every setting load_settings reads: none may leak in from the caller's shell.
SETTING_NAMES = {
    "POLKU_INSTANCE_PATH", "SECRET_KEY", "DATABASE_URL", "REDIS_URL",
    "PUBLIC_BASE_URL", "SEND_RETRY_INTERVALS", "MAX_REQUEST_BYTES",
    "SERVICE_CONTACT", "LOG_LEVEL", "LOG_JSON",
}  # fmt: skip


def make_app() -> Flask:
    """Build Polku from the environment plus the bare endpoint; gunicorn calls this."""
    app = create_app()
    app.add_url_rule(BARE_PATH, "bench_bare", _bare, methods=["POST"])

    return app


def _bare() -> Response:
    # Read the body as the webhook does, then do no work at all.
    request.get_data()

    return Response(EMPTY_TWIML, mimetype="text/xml")


@dataclass(frozen=True)
class Post:
    """One prepared request: everything is computed before the clock starts."""

    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Tally:
    """Latencies (seconds), errors and busy time of one endpoint."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    def add(self, other: Tally) -> None:
        self.latencies.extend(other.latencies)
        self.errors += other.errors
        self.elapsed += other.elapsed


@dataclass(frozen=True)
class Counts:
    """What the webhooks left behind: stored rows and RQ jobs."""

    stored: int
    marked_queued: int
    queued: int
    rate_limited: int


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server to create a throw-away database on, or a SQLite "
        "URL (default: SQLite in a temporary instance folder)",
    )
    parser.add_argument(
        "--redis-url",
        help="a Redis database that is FLUSHED before and after the run "
        "(default: the embedded Redis)",
    )
    args = parser.parse_args()
    if args.requests < ROUNDS or args.concurrency < 1:
        parser.error(f"--requests must be at least {ROUNDS}, --concurrency at least 1")

    return args


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def bench_database(url: str | None, instance: Path) -> Iterator[str]:
    """Yield a database URL; on PostgreSQL a fresh database, dropped afterwards."""
    if not url:
        yield f"sqlite:///{instance / 'polku.db'}"
        return
    server = make_url(url)
    if server.get_backend_name() != "postgresql":
        yield url
        return

    if server.drivername == "postgresql":
        server = server.set(drivername="postgresql+psycopg")
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"polku_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def polku_environ(args: argparse.Namespace, instance: Path, database_url: str, port: int) -> dict[str, str]:
    """Return the settings the server sees, as environment variables."""
    environ = {
        "POLKU_INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "TWILIO_SMS_FROM": SMS_FROM,
        # Nothing is sent here (no worker runs), but never aim at the real API.
        "TWILIO_API_URL": "http://127.0.0.1:9",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "LOG_LEVEL": "INFO",
    }
    if args.redis_url:
        environ["REDIS_URL"] = args.redis_url

    return environ


def prepare(path: str, count: int, environ: dict[str, str]) -> list[Post]:
    """Return `count` distinct inbound-SMS forms, signed for `path` like Twilio."""
    url = environ["PUBLIC_BASE_URL"] + path
    validator = RequestValidator(environ["TWILIO_AUTH_TOKEN"])
    posts = []
    for number in range(count):
        form = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": environ["TWILIO_ACCOUNT_SID"],
            "From": f"+3584055{number % CLIENTS:05d}",
            "To": SMS_FROM,
            "Body": "Hei, haluaisin apua työnhakuun",
            "NumMedia": "0",
            "NumSegments": "1",
            "ApiVersion": "2010-04-01",
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": validator.compute_signature(url, form),
        }
        posts.append(Post(path, urlencode(form).encode(), headers))

    return posts


class LoadGenerator:
    """A fixed number of keep-alive connections, each driven by one thread."""

    def __init__(self, port: int, concurrency: int):
        self.connections = [
            http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for _ in range(concurrency)
        ]

    def run(self, posts: list[Post]) -> Tally:
        """Send every post once, as fast as the connections allow."""
        pending = iter(posts)
        lock = threading.Lock()
        tallies = [Tally() for _ in self.connections]
        threads = [
            threading.Thread(target=self._drive, args=(conn, pending, lock, tally))
            for conn, tally in zip(self.connections, tallies, strict=True)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        total = Tally(elapsed=time.perf_counter() - started)
        for tally in tallies:
            total.add(tally)

        return total

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    def _drive(
        self,
        connection: http.client.HTTPConnection,
        pending: Iterator[Post],
        lock: threading.Lock,
        tally: Tally,
    ) -> None:
        while True:
            with lock:
                post = next(pending, None)
            if post is None:
                return
            started = time.perf_counter()
            ok = _send(connection, post)
            tally.latencies.append(time.perf_counter() - started)
            tally.errors += not ok


def _send(connection: http.client.HTTPConnection, post: Post) -> bool:
    try:
        connection.request("POST", post.path, body=post.body, headers=post.headers)
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException):
        # A closed connection opens again on the next request.
        connection.close()
        return False

    return response.status == 200


def start_server(environ: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start gunicorn serving `make_app()` and wait until it answers."""
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(WORKERS), "--threads", str(THREADS),
        # Longer than any pause between rounds, so no keep-alive connection drops.
        "--keep-alive", "30",
        "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT),
        "bench.webhook:make_app()",
    ]  # fmt: skip
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in SETTING_NAMES and not name.startswith("TWILIO_")
    }
    with log.open("wb") as output:
        server = subprocess.Popen(  # noqa: S603 - our own command line
            command,
            env=inherited | environ,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait_until_serving(server, port, log)

    return server


def _wait_until_serving(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    probe = Post(BARE_PATH, b"", {"Content-Type": "text/plain"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited at start:\n{log.read_text()[-3000:]}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        ok = _send(connection, probe)
        connection.close()
        if ok:
            return
        time.sleep(0.2)

    stop_server(server)
    raise RuntimeError(f"gunicorn did not answer within 60 s:\n{log.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn gracefully, then kill whatever is left of its process group."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    try:
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def drive(port: int, concurrency: int, webhooks: list[Post], bares: list[Post]) -> dict[str, Tally]:
    """Warm up, then alternate bare and webhook rounds; return the measured tallies."""
    warmup = len(webhooks) - len(bares)
    tallies = {BARE_PATH: Tally(), WEBHOOK_PATH: Tally()}
    load = LoadGenerator(port, concurrency)
    try:
        load.run(prepare_like(bares[:warmup]))
        load.run(webhooks[:warmup])
        size = math.ceil(len(bares) / ROUNDS)
        for start in range(0, len(bares), size):
            tallies[BARE_PATH].add(load.run(bares[start : start + size]))
            measured = webhooks[warmup + start : warmup + start + size]
            tallies[WEBHOOK_PATH].add(load.run(measured))
    finally:
        load.close()

    return tallies


def prepare_like(posts: list[Post]) -> list[Post]:
    return list(posts)
