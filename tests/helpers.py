"""Helpers for tests that run real RQ workers and wait for their outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from flask import Flask

from bot.queue import PolkuWorker, get_queue
from bot.settings import Settings

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


def worker_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes `flask worker` run on `settings`."""
    values = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "SECRET_KEY": settings.secret_key,
        "ENCRYPTION_KEYS": ",".join(settings.encryption_keys),
        "TWILIO_ACCOUNT_SID": settings.twilio_account_sid or "",
        "TWILIO_AUTH_TOKEN": settings.twilio_auth_token or "",
        "TWILIO_SMS_FROM": settings.twilio_sms_from or "",
        "TWILIO_WHATSAPP_FROM": settings.twilio_whatsapp_from or "",
        "TWILIO_API_URL": settings.twilio_api_url,
        "TWILIO_TIMEOUT": str(settings.twilio_timeout),
        "PUBLIC_BASE_URL": settings.public_base_url or "",
        "RETRY_INTERVALS": ",".join(map(str, settings.retry_intervals)),
        "INBOUND_PER_MINUTE": str(settings.inbound_per_minute),
        "INBOUND_PER_DAY": str(settings.inbound_per_day),
        "OUTBOUND_PER_HOUR": str(settings.outbound_per_hour),
        "OUTBOUND_PER_MINUTE": str(settings.outbound_per_minute),
        "CONVERSATIONS_PER_DAY": str(settings.conversations_per_day),
        "MAX_MESSAGE_CHARS": str(settings.max_message_chars),
        "SMS_ALLOWED_COUNTRY_CODES": ",".join(settings.sms_allowed_country_codes),
        "POLKU_INSTANCE_PATH": str(settings.instance_path),
        "OPENAI_BASE_URL": settings.openai_base_url or "",
        "OPENAI_API_KEY": settings.openai_api_key or "",
        "LLM_MODEL": settings.llm_model or "",
        "LLM_TIMEOUT": str(settings.llm_timeout),
        "LLM_MAX_RETRIES": str(settings.llm_max_retries),
        "LOG_LEVEL": "WARNING",
    }

    return {**os.environ, **values, **extra}


def embedded_environment(instance: Path) -> dict[str, str]:
    """This process's environment without the services: Polku's embedded defaults."""
    services = ("DATABASE_", "REDIS_", "TWILIO_", "SECRET_")
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(services)
    }
    env["POLKU_INSTANCE_PATH"] = str(instance)

    return env


@contextmanager
def worker_processes(
    app: Flask, count: int, log_level: str = "WARNING"
) -> Iterator[None]:
    """Run `count` separate `flask worker` processes on the app's settings."""
    env = worker_environment(app.config["POLKU"], LOG_LEVEL=log_level)
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
    # Each in a session of its own, so that its work horses and RQ's scheduler
    # can be killed with it: a worker left behind would take the next test's jobs.
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                # Still finishing a job after 15 s: a warm shutdown is not needed here.
                pass
            _kill_group(process)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill what is left of `process` and its children (its process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
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
