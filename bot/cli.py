"""Command-line entry points: `serve`, `worker`, `scheduler` and `db upgrade`.

`serve` is the zero-configuration start: the web server, a worker with RQ's
scheduler, and the periodic sweep, on SQLite and an embedded Redis.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, TextIO

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger(__name__)

SWEEP_INTERVAL = 60
REMINDER_INTERVAL = 600
RETENTION_INTERVAL = 3600
LESSON_INTERVAL = 120

db_cli = AppGroup("db", help="Manage the database schema.")
keys_cli = AppGroup("keys", help="Manage the keys that encrypt personal data.")


def init_app(app: Flask) -> None:
    from bot.chat_cli import chat, flows_cli
    from bot.course_cli import course_cli
    from bot.doctor import doctor_command
    from bot.handoff_cli import counsellors_cli, handoffs_cli
    from esco.cli import esco_cli
    from translations.cli import translations_cli

    app.cli.add_command(translations_cli)
    app.cli.add_command(esco_cli)
    app.cli.add_command(llm_check)
    app.cli.add_command(chat)
    app.cli.add_command(flows_cli)
    app.cli.add_command(handoffs_cli)
    app.cli.add_command(course_cli)
    app.cli.add_command(counsellors_cli)
    app.cli.add_command(serve)
    app.cli.add_command(worker)
    app.cli.add_command(scheduler)
    app.cli.add_command(db_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(anonymise_command)
    app.cli.add_command(detect_language_command)
    app.cli.add_command(doctor_command)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""
    from bot import schema
    from bot.db import get_db

    schema.upgrade(get_db().engine)
    click.echo("database schema is up to date")


@click.command("anonymise")
@with_appcontext
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
def anonymise_command(source: TextIO) -> None:
    """Read texts, one per line (standard input or SOURCE); write them anonymised.

    The same person or number gets the same placeholder on every line.
    """
    from bot.anonymiser import anonymise

    placeholders: dict[str, dict[str, int]] = {}
    for line in source:
        click.echo(anonymise(line.rstrip("\n"), placeholders).text)


@click.command("detect-language")
@with_appcontext
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
def detect_language_command(source: TextIO) -> None:
    """Read texts, one per line; print each one's language code and confidence.

    "-" means the text is too short or unclear to tell; the best guess follows.
    """
    from translations.detection import best_guess, detect

    for line in source:
        text = line.rstrip("\n")
        sure, guess = detect(text), best_guess(text)
        code = sure.code if sure else "-"
        shown = f"{guess.code} {guess.confidence:.2f}" if guess else "none"
        click.echo(f"{code}\t{shown}")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt all personal data with the first key in ENCRYPTION_KEYS."""
    from bot.db import get_db
    from bot.keys import rotate_all

    count = rotate_all(get_db().engine)
    click.echo(f"{count} values re-encrypted with the first key; the others may go")


@click.command()
@with_appcontext
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--with-scheduler/--without-scheduler", default=True, show_default=True)
def worker(burst: bool, with_scheduler: bool) -> None:
    """Run one RQ worker for Polku's queue (several may run side by side)."""

    import workers
    from bot.anonymiser import analyzer
    from bot.queue import PolkuWorker, get_queue
    from esco import preload as preload_esco
    from translations.argos import installed_packages
    from translations.argos import preload as preload_argos
    from translations.detection import preload

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = app.config["POLKU"]
    workers.use_app(app)
    # Load the language models before forking work horses: each job starts warm.
    preload()
    preload_esco(app)
    # Twilio's client imports its REST classes on first use: 50-180 ms that every
    # work horse would pay again for each reply it sends (bench/load.py).
    import twilio.rest.api  # noqa: F401

    argos = settings.translator == "argos" and installed_packages(settings.packages_dir)
    if argos or settings.llm_enabled:
        # Text for a translator or a language model is anonymised first: load
        # Presidio once, here, not in every work horse.
        analyzer()
    if argos:
        preload_argos()
    if settings.llm_enabled:
        # The openai package takes 1-2 s to import: once, not in every job.
        import bot.llm_openai  # noqa: F401
    queue = get_queue(app)
    PolkuWorker([queue], connection=queue.connection).work(
        burst=burst,
        with_scheduler=with_scheduler,
        logging_level=settings.log_level,
    )


@click.command()
@with_appcontext
def scheduler() -> None:
    """Run the periodic jobs: the sweep, reminders, lessons and retention."""
    from rq.cron import CronScheduler

    from bot.queue import QUEUE_NAME, get_queue
    from workers.course import send_lessons
    from workers.maintenance import delete_expired, requeue_pending, send_reminders

    queue = get_queue(current_app._get_current_object())  # type: ignore[attr-defined]
    cron = CronScheduler(connection=queue.connection, name=f"polku-{os.getpid()}")
    cron.register(requeue_pending, QUEUE_NAME, interval=SWEEP_INTERVAL)
    cron.register(send_reminders, QUEUE_NAME, interval=REMINDER_INTERVAL)
    cron.register(delete_expired, QUEUE_NAME, interval=RETENTION_INTERVAL)
    cron.register(send_lessons, QUEUE_NAME, interval=LESSON_INTERVAL)
    cron.start()


@click.command()
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", "worker_count", default=1, show_default=True, type=int)
def serve(host: str, port: int, worker_count: int) -> None:
    """Start the web chat and webhooks, workers and the scheduler together."""
    from werkzeug.serving import run_simple

    from bot import schema
    from bot.db import get_db
    from bot.queue import get_queue, redis_url

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = app.config["POLKU"]
    schema.upgrade(get_db().engine)
    # Start the embedded Redis here, so that it stops when serve stops.
    get_queue(app)

    # Children find the same database and Redis, including the embedded one.
    env = dict(os.environ)
    env["REDIS_URL"] = redis_url(settings)
    env["DATABASE_URL"] = settings.database_url
    env["POLKU_INSTANCE_PATH"] = str(settings.instance_path)
    # The commands are this interpreter and our own subcommands, no outside input.
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    children = [
        subprocess.Popen([*flask, "worker"], env=env)  # noqa: S603 for _ in range(worker_count)
    ]
    children.append(subprocess.Popen([*flask, "scheduler"], env=env))  # noqa: S603

    # A plain SIGTERM would skip the clean-up below and orphan the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    click.echo(f"Polku is running: open http://{host}:{port}/ to chat with it.")
    try:
        run_simple(host, port, app, threaded=True)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


@click.command("llm-check")
@with_appcontext
def llm_check() -> None:
    """Ask the configured language model for one word, and say how it went."""
    import time

    from bot.llm import PROBE, ModelUnavailableError, get_language_model

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    model = get_language_model(app)
    if model is None:
        click.echo("No OPENAI_API_KEY: Polku runs in deterministic mode, no model.")
        return
    settings = app.config["POLKU"]
    began = time.monotonic()
    try:
        answer = model.complete(PROBE)
    except ModelUnavailableError as exc:
        raise click.ClickException(
            f"{settings.llm_model} at {settings.openai_base_url or 'the default URL'}"
            f" did not answer: {exc}"
        ) from exc
    seconds = time.monotonic() - began
    reply = answer.strip()[:20]
    click.echo(f"{settings.llm_model} answered {reply!r} in {seconds:.1f} s")
