"""Logging for the web app, the workers and the CLI, configured in one place.

Log lines carry ids, never message text, phone numbers or names: the request id
of a web request, and the conversation and job a worker is busy with.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from bot.settings import Settings

if TYPE_CHECKING:
    from flask import Flask, Response

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"
REQUEST_HEADER = "X-Request-ID"
# A proxy's request id is kept when it is a short plain token. It must hold a
# letter: a string of digits could be a phone number.
SAFE_REQUEST_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9._:-]{8,64}$")

request_id: ContextVar[str | None] = ContextVar("polku_request_id", default=None)
conversation_id: ContextVar[int | None] = ContextVar(
    "polku_conversation_id", default=None
)
job_id: ContextVar[str | None] = ContextVar("polku_job_id", default=None)

# Each id a line may carry: its record attribute (and JSON key), its text label.
CONTEXT: tuple[tuple[str, str, ContextVar[Any]], ...] = (
    ("request_id", "request", request_id),
    ("conversation_id", "conversation", conversation_id),
    ("job_id", "job", job_id),
)


class ContextFilter(logging.Filter):
    """Put the current request, conversation and job ids on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        parts = []
        for attribute, label, variable in CONTEXT:
            value = getattr(record, attribute, None) or variable.get()
            setattr(record, attribute, value)
            if value is not None:
                parts.append(f"{label}={value}")
        record.context = f" [{' '.join(parts)}]" if parts else ""

        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for attribute, _, _ in CONTEXT:
            value = getattr(record, attribute, None)
            if value is not None:
                entry[attribute] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)

        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Send Polku's and RQ's logs to standard error at the configured level."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter() if settings.log_json else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    for name in ("bot", "workers", "flows", "translations", "esco", "rq"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(settings.log_level)
        logger.propagate = False
    # The twilio client logs request URLs and headers at INFO; keep them out.
    logging.getLogger("twilio").setLevel(logging.WARNING)


def bind_conversation(conversation: int | None) -> None:
    """Mark the lines that follow, in this job or request, with `conversation`."""
    if conversation is not None:
        conversation_id.set(conversation)


@contextmanager
def job_context(job: str) -> Iterator[None]:
    """Mark the lines logged inside with job id `job`, and no conversation yet."""
    job_token = job_id.set(job)
    conversation_token = conversation_id.set(None)
    try:
        yield
    finally:
        conversation_id.reset(conversation_token)
        job_id.reset(job_token)


def init_app(app: Flask) -> None:
    """Give every web request an id: in its log lines and its response header."""
    app.before_request(_start_request)
    app.after_request(_tag_response)
    app.teardown_request(_end_request)


def _start_request() -> None:
    from flask import g, request

    incoming = request.headers.get(REQUEST_HEADER, "")
    value = incoming if SAFE_REQUEST_ID.match(incoming) else secrets.token_hex(8)
    g.polku_log_tokens = (request_id.set(value), conversation_id.set(None))


def _tag_response(response: Response) -> Response:
    value = request_id.get()
    if value is not None:
        response.headers[REQUEST_HEADER] = value

    return response


def _end_request(_error: BaseException | None = None) -> None:
    from flask import g

    tokens = g.pop("polku_log_tokens", None)
    if tokens is None:
        return
    request_token, conversation_token = tokens
    conversation_id.reset(conversation_token)
    request_id.reset(request_token)
