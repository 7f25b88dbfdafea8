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
    "PUBLIC_BASE_URL", "RETRY_INTERVALS", "MAX_REQUEST_BYTES",
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


def polku_environ(
    args: argparse.Namespace, instance: Path, database_url: str, port: int
) -> dict[str, str]:
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


def start_server(
    environ: dict[str, str], port: int, log: Path
) -> subprocess.Popen[bytes]:
    """Start gunicorn serving `make_app()` and wait until it answers."""
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(WORKERS), "--threads", str(THREADS),
        # Longer than any pause between rounds, so no keep-alive connection drops.
        "--keep-alive", "30",
        # No control socket: its default path is shared by every gunicorn.
        "--no-control-socket",
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
    raise RuntimeError(
        f"gunicorn did not answer within 60 s:\n{log.read_text()[-3000:]}"
    )


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


def drive(
    port: int, concurrency: int, posts: dict[str, list[Post]], warmup: int
) -> tuple[Tally, dict[str, Tally]]:
    """Warm up, then alternate the endpoints round by round so noise hits both."""
    warm = Tally()
    measured = {path: Tally() for path in posts}
    load = LoadGenerator(port, concurrency)
    try:
        for batch in posts.values():
            warm.add(load.run(batch[:warmup]))
        for number in range(ROUNDS):
            for path, batch in posts.items():
                measured[path].add(load.run(_round(batch[warmup:], number)))
    finally:
        load.close()

    return warm, measured


def _round(posts: list[Post], number: int) -> list[Post]:
    size = len(posts)

    return posts[size * number // ROUNDS : size * (number + 1) // ROUNDS]


def count_left_behind(app: Flask) -> Counts:
    """Count inbound messages in the database and their jobs in Redis."""
    inbound = select(func.count()).where(Message.direction == INBOUND)
    with get_db(app).session() as session:
        stored = session.scalar(inbound) or 0

    # RQ holds back all but one job per client (bot.queue's "polku-client-<id>"
    # rate limit) until a worker finishes it; held jobs are not in the list yet.
    queue = get_queue(app)
    registries = RateLimitRegistry.all(queue.connection)
    held = sum(
        registry.get_rate_limited_job_count()
        for registry in registries
        if registry.key.startswith("polku-client-")
    )

    return Counts(stored, queue.count, held)


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of `values`."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))

    return ordered[rank - 1]


def summarize(tally: Tally) -> tuple[int, float, float, float, int]:
    """Return requests, requests/s, p50 ms, p99 ms and errors."""
    count = len(tally.latencies)
    p50 = percentile(tally.latencies, 0.50) * 1000
    p99 = percentile(tally.latencies, 0.99) * 1000

    return count, count / tally.elapsed, p50, p99, tally.errors


def describe_setup(args: argparse.Namespace, app: Flask, warmup: int) -> None:
    settings = app.config["POLKU"]
    database = make_url(settings.database_url)
    if database.get_backend_name() == "sqlite":
        database_kind = f"SQLite, {database.database}"
    else:
        database_kind = f"PostgreSQL, throw-away database {database.database}"
    if settings.redis_url:
        parts = urlsplit(settings.redis_url)
        redis_kind = f"{parts.hostname}:{parts.port}{parts.path}, flushed"
    else:
        redis_kind = f"embedded, {settings.embedded_redis_socket}"
    rows = {
        "database": database_kind,
        "redis": redis_kind,
        "server": f"gunicorn {gunicorn.__version__}, {WORKERS} workers x "
        f"{THREADS} threads, {settings.public_base_url}",
        "load": f"{args.concurrency} keep-alive connections, {CLIENTS} senders",
        "schedule": f"per endpoint {warmup} warm-up, then {args.requests} "
        f"in {ROUNDS} alternating rounds",
        "python": f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
    }

    print("Polku webhook benchmark")
    for label, value in rows.items():
        print(f"  {label:<10} {value}")
    print()


def report(measured: dict[str, Tally], warm: Tally) -> None:
    header = ("endpoint", "requests", "req/s", "p50 ms", "p99 ms", "errors")
    print("{:<18} {:>9} {:>9} {:>8} {:>8} {:>7}".format(*header))
    rows = {path: summarize(tally) for path, tally in measured.items()}
    for path, (count, rate, p50, p99, errors) in rows.items():
        print(f"{path:<18} {count:>9} {rate:>9.1f} {p50:>8.2f} {p99:>8.2f} {errors:>7}")

    bare, webhook = rows[BARE_PATH], rows[WEBHOOK_PATH]
    print()
    print(
        f"webhook/bare: throughput {webhook[1] / bare[1]:.2f}x, "
        f"p50 {webhook[2] / bare[2]:.2f}x, p99 {webhook[3] / bare[3]:.2f}x"
    )
    print(f"warm-up errors (both endpoints): {warm.errors}")


def check(sent: int, warmup: int, before: Counts, after: Counts) -> bool:
    """Print whether every webhook request left a message and a job; True if so."""
    stored = after.stored - before.stored
    queued = after.queued - before.queued
    held = after.rate_limited - before.rate_limited
    ok = stored == queued + held == sent

    print()
    print(f"check: {sent} webhook requests sent ({warmup} of them warm-up)")
    print(f"       {stored} inbound messages stored")
    print(f'       {queued + held} RQ jobs: {queued} in queue "polku", {held} held')
    print("       back by the per-client rate limit until a worker runs")
    print(f"       {'OK: nothing lost' if ok else 'FAILED: the counts differ'}")

    return ok


def benchmark(app: Flask, args: argparse.Namespace, environ: dict[str, str]) -> bool:
    """Serve `app`'s settings with gunicorn, drive it, report; True if all went well."""
    schema.upgrade(get_db(app).engine)
    if args.redis_url:
        get_queue(app).connection.flushdb()
    warmup = max(args.concurrency, args.requests // 10)
    posts = {
        path: prepare(path, warmup + args.requests, environ)
        for path in (BARE_PATH, WEBHOOK_PATH)
    }
    before = count_left_behind(app)

    port = urlsplit(environ["PUBLIC_BASE_URL"]).port or 80
    log = Path(environ["POLKU_INSTANCE_PATH"]) / "gunicorn.log"
    server = start_server(environ, port, log)
    try:
        warm, measured = drive(port, args.concurrency, posts, warmup)
    finally:
        stop_server(server)

    describe_setup(args, app, warmup)
    report(measured, warm)
    sent = len(posts[WEBHOOK_PATH])
    ok = check(sent, warmup, before, after=count_left_behind(app))
    errors = warm.errors + sum(tally.errors for tally in measured.values())
    if errors or not ok:
        print(f"\nlast lines of the server log:\n{log.read_text()[-3000:]}")

    return ok and not errors


def main() -> int:
    args = parse_args()
    instance = Path(tempfile.mkdtemp(prefix="polku-bench-"))
    # Registered before the app starts the embedded Redis, so it runs after that
    # server has stopped and saved into the folder.
    atexit.register(shutil.rmtree, instance, ignore_errors=True)

    with bench_database(args.database_url, instance) as database_url:
        environ = polku_environ(args, instance, database_url, free_port())
        # The server logs at INFO like production; this process only warns.
        app = create_app({"environ": environ | {"LOG_LEVEL": "WARNING"}})
        try:
            ok = benchmark(app, args, environ)
        finally:
            if args.redis_url:
                get_queue(app).connection.flushdb()
            get_db(app).dispose()

    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
