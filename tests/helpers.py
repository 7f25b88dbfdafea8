"""Helpers for tests that run real RQ workers and wait for their outcome."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from flask import Flask

from bot.queue import PolkuWorker, get_queue

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class BurstWorker(PolkuWorker):
    """Polku's worker for one burst in the test process, listening to no commands.

    RQ's command channel is a pub/sub thread that waits up to a minute for a
    message and outlives a burst; its socket is then left to the collector,
    which warns about it in whatever test happens to be running.
    """

    def subscribe(self) -> None:
        self.pubsub_thread = None


def run_worker(app: Flask, timeout: float = 20.0) -> None:
    """Run a real RQ worker until no job is queued or scheduled (retries too)."""
    queue = get_queue(app)
    deadline = time.monotonic() + timeout
    while True:
        BurstWorker([queue], connection=queue.connection).work(
            burst=True, with_scheduler=True, logging_level="WARNING"
        )
        waiting = len(queue) + queue.scheduled_job_registry.count
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{waiting} jobs still waiting after {timeout} s")
        time.sleep(0.2)


def queued_jobs(app: Flask) -> int:
    """Count the jobs RQ holds, including those waiting on a client's turn."""
    return len(get_queue(app).connection.keys("rq:job:*"))


@contextmanager
def worker_processes(
    app: Flask, count: int, log_level: str = "WARNING"
) -> Iterator[None]:
    """Run `count` separate `flask worker` processes on the app's settings."""
    settings = app.config["POLKU"]
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "SECRET_KEY": settings.secret_key,
        "ENCRYPTION_KEYS": ",".join(settings.encryption_keys),
        "TWILIO_ACCOUNT_SID": settings.twilio_account_sid or "",
        "TWILIO_AUTH_TOKEN": settings.twilio_auth_token or "",
        "TWILIO_SMS_FROM": settings.twilio_sms_from or "",
        "TWILIO_WHATSAPP_FROM": settings.twilio_whatsapp_from or "",
        "TWILIO_API_URL": settings.twilio_api_url,
        "PUBLIC_BASE_URL": settings.public_base_url or "",
        "RETRY_INTERVALS": ",".join(map(str, settings.retry_intervals)),
        "POLKU_INSTANCE_PATH": str(settings.instance_path),
        "LOG_LEVEL": log_level,
    }
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)


def wait_for(
    condition: Callable[[], T], timeout: float = 20.0, interval: float = 0.1
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def collect_garbage() -> int:
    """A job: collect garbage in the work horse, as any job's allocations may."""
    import gc

    return gc.collect()


def search_esco(index: str, text: str) -> str:
    """A job: search ESCO in the work horse, as the interview's jobs do."""
    from esco.embeddings import available
    from esco.matcher import Matcher

    return (
        Matcher.load(Path(index), available()).search(text, "fi", "occupation")[0].uri
    )
