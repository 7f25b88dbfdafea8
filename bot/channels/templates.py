"""WhatsApp message templates: what Polku sends when the 24-hour window is closed.

WhatsApp lets a business write free text only within 24 hours of the person's
last message; outside it, only a template WhatsApp has approved, named by its
ContentSid, one per language. They are configured in one file
(flows/whatsapp.yaml, or WHATSAPP_TEMPLATES_FILE) and read when the app starts.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.errors import ConfigError
from translations import LANGUAGES_BY_CODE, text

logger = logging.getLogger(__name__)

CONTENT_SID = re.compile(r"^HX[0-9a-f]{32}$")
# The repository's placeholders: a real ContentSid is never all zeros.
PLACEHOLDER = re.compile(r"^HX0{30}[0-9a-f]{2}$")
# How long before the window closes Polku stops counting on it: a message
# queued now may leave a little later.
WINDOW_HOURS = 24
WINDOW_MARGIN_MINUTES = 15


@dataclass(frozen=True)
class Template:
    """One approved template: its variables in order, and a ContentSid per language.

    `text_key` names the catalogue text that says what the template says, in
    each language; it is stored as the message's body, for the record and for
    the client's MY DATA.
    """

    name: str
    text_key: str
    variables: tuple[str, ...]
    content_sids: dict[str, str]

    def sid_for(self, language: str | None) -> tuple[str, str] | None:
        """Return (language, ContentSid) to use: the client's, else English."""
        for code in (language, "en"):
            sid = self.content_sids.get(code or "")
            if sid and not PLACEHOLDER.match(sid):
                return str(code), sid

        return None

    def render(self, language: str, values: dict[str, str]) -> tuple[str, str]:
        """Return the template's text in `language` and its ContentVariables JSON."""
        numbered = {
            str(number): values[name]
            for number, name in enumerate(self.variables, start=1)
        }
        body = text(self.text_key, language, **values)

        return body, json.dumps(numbered, ensure_ascii=False)


def load_templates(path: Path) -> dict[str, Template]:
    """Read the templates file; raise `ConfigError` naming what is wrong."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"WHATSAPP TEMPLATES {path}: cannot be read: {exc}") from exc
    templates = {}
    for name, item in (data.get("templates") or {}).items():
        where = f"WHATSAPP TEMPLATES {path}: template {name!r}"
        if not isinstance(item, dict) or not item.get("text"):
            raise ConfigError(f"{where}: needs text (a catalogue key)")
        sids = {
            str(code): str(sid) for code, sid in (item.get("content_sid") or {}).items()
        }
        for code, sid in sids.items():
            if code not in LANGUAGES_BY_CODE:
                raise ConfigError(f"{where}: {code!r} is not one of Polku's languages")
            if not CONTENT_SID.match(sid):
                raise ConfigError(
                    f"{where}: {sid!r} ({code}) is not a ContentSid (HX and 32 "
                    "hexadecimal digits)"
                )
        templates[str(name)] = Template(
            name=str(name),
            text_key=str(item["text"]),
            variables=tuple(map(str, item.get("variables") or ())),
            content_sids=sids,
        )
    unset = sorted(
        name for name, template in templates.items() if template.sid_for("en") is None
    )
    if unset:
        logger.info("whatsapp templates without a ContentSid yet: %s", ", ".join(unset))

    return templates
