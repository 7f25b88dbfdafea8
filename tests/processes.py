"""Real server processes for the fault tests: Redis, a PostgreSQL cluster, workers.

Each runs on loopback only, from a temporary folder, and can be stopped, killed and
started again on the same port. The fixtures that use them kill them at teardown.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from bot.settings import Settings
from tests import helpers

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def descendants(pid: int) -> list[int]:
    """Return the ids of every process below `pid` (Linux /proc), children first."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # it ended while we looked
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children

    return found


def _stop(process: subprocess.Popen[bytes] | None, sig: int) -> None:
    """Send `sig` to `process` and every process below it, and reap it.

    Its own session holds most of them; RQ's work horse makes a process group of
    its own, so it is found by parentage instead.
    """
    if process is None or process.poll() is not None:
        return
    # The parent first: it must not see its work horse die and clean up.
    for pid in [process.pid, *descendants(process.pid)]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


class RedisServer:
    """A `redis-server` without persistence: a restart loses every key."""

    def __init__(self, folder: Path, executable: str) -> None:
        self.folder = folder
        self.executable = executable
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            self.executable, "--bind", "127.0.0.1", "--port", str(self.port),
            "--save", "", "--appendonly", "no", "--dir", str(self.folder),
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603
            command, stdout=subprocess.DEVNULL, start_new_session=True
        )
        wait_until(self._answers, 10, f"redis-server on port {self.port}")

        return self

    def kill(self) -> None:
        """Crash it: SIGKILL, as a machine losing power would."""
        _stop(self.process, signal.SIGKILL)

    def _answers(self) -> bool:
        try:
            with Redis.from_url(self.url, socket_connect_timeout=0.2) as connection:
                return bool(connection.ping())
        except RedisError:
            return False


class PostgresCluster:
    """A PostgreSQL cluster of its own (initdb, pg_ctl) in a temporary folder.

    Trust authentication on 127.0.0.1 and a socket in the folder: never the
    machine's shared server. No fsync: the tests crash it on purpose anyway.
    PostgreSQL refuses to run as root; as root (CI containers), the cluster
    runs as the `postgres` user in a folder it owns.
    """

    def __init__(self, bin_dir: Path = POSTGRES_BIN) -> None:
        self.bin_dir = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="polku-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise AssertionError(
                    "PostgreSQL will not run as root and there is no postgres user"
                ) from None
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> PostgresCluster:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options,
            "-l", str(self.folder / "server.log"), "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; `immediate` drops every connection as a crash would."""
        if self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False) == 0

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *arguments: str, check: bool = True) -> int:
        command = [*self.prefix, str(self.bin_dir / program), *arguments]
        result = subprocess.run(command, capture_output=True, check=False)  # noqa: S603
        if result.returncode and check:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise AssertionError(f"{program} failed ({result.returncode}): {output}")

        return result.returncode


def redis_server_executable() -> str | None:
    return shutil.which("redis-server")


def postgres_binaries() -> Path | None:
    ok = all((POSTGRES_BIN / name).exists() for name in ("initdb", "pg_ctl"))

    return POSTGRES_BIN if ok else None


def worker_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The worker's environment for these tests: no translator, INFO logs."""
    return helpers.worker_environment(
        settings, **{"TRANSLATOR": "none", "LOG_LEVEL": "INFO", **extra}
    )


class WorkerProcess:
    """`flask --app wsgi worker` in a session of its own: the worker, its work
    horses and RQ's scheduler process share one process group."""

    def __init__(self, environment: dict[str, str], log: Path) -> None:
        self.environment = environment
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        command = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                command,
                cwd=ROOT,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        return self

    def kill(self) -> None:
        """SIGKILL the worker and its work horse at once: no cleanup runs."""
        _stop(self.process, signal.SIGKILL)

    def stop(self) -> None:
        """Ask it to finish (warm shutdown); kill it if it does not."""
        _stop(self.process, signal.SIGTERM)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
