"""Logging for the web app, the workers and the CLI, configured in one place.

Log lines carry ids, never message text, phone numbers or names.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from bot.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)

        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Send Polku's and RQ's logs to standard error at the configured level."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter() if settings.log_json else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    for name in ("bot", "workers", "flows", "translations", "esco", "rq"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(settings.log_level)
        logger.propagate = False
    # The twilio client logs request URLs and headers at INFO; keep them out.
    logging.getLogger("twilio").setLevel(logging.WARNING)
