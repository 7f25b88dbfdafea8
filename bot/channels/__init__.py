"""Messaging channels: where a reply goes once the worker has written it.

Each vendor sits in its own module behind `Channel`; `channels_for(settings)`
builds the ones the configuration enables (SMS and WhatsApp through Twilio, and
the web chat, which needs no account).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from flask import Flask

    from bot.channels.templates import Template
    from bot.settings import Settings

SMS, WHATSAPP, WEB = "sms", "whatsapp", "web"


class Channel(Protocol):
    """Something that can hand one message body to one recipient."""

    name: str
    # Segments one message may cost, or None where segments mean nothing.
    max_segments: int | None

    def send(self, to: str, body: str) -> str:
        """Send `body` to `to` and return the provider's id for the message.

        Raises `ChannelError` (retryable or not) when the provider refuses.
        """
        ...


def channels_for(settings: Settings) -> dict[str, Channel]:
    """Return the channels `settings` enable, by name."""
    from bot.channels.web import WebChannel

    channels: dict[str, Channel] = {WEB: WebChannel()}
    if settings.twilio_enabled:
        from bot.channels.twilio import TwilioChannel

        if settings.twilio_sms_from:
            channels[SMS] = TwilioChannel(settings, SMS)
        if settings.twilio_whatsapp_from:
            channels[WHATSAPP] = TwilioChannel(settings, WHATSAPP)

    return channels


def templates_file(settings: Settings) -> Path:
    """Where the WhatsApp templates are: WHATSAPP_TEMPLATES_FILE, else the flows'."""
    from flows import FLOWS_DIR

    return settings.whatsapp_templates_file or (
        (settings.flows_dir or FLOWS_DIR) / "whatsapp.yaml"
    )


def init_app(app: Flask) -> None:
    from bot.channels.templates import load_templates

    settings = app.config["POLKU"]
    app.extensions["polku.channels"] = channels_for(settings)
    app.extensions["polku.templates"] = load_templates(templates_file(settings))


def get_channels(app: Flask) -> dict[str, Channel]:
    return app.extensions["polku.channels"]


def get_templates(app: Flask) -> dict[str, Template]:
    """The WhatsApp templates by name (flows/whatsapp.yaml)."""
    return app.extensions["polku.templates"]
