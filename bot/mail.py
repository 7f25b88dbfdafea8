"""E-mail out: the counsellors' handoff messages, over SMTP or into a local outbox.

`SMTP_URL` picks the server: smtp+starttls://host:587, smtps://host:465 (TLS
from the start) or smtp://host:25 (a local relay only). Without it, Polku runs
on its embedded defaults and writes each message to instance/outbox/ instead.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import Flask

from bot.errors import ConfigError, PolkuError

logger = logging.getLogger(__name__)

SCHEMES = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "tls"}
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class MailError(PolkuError):
    """The message could not be handed to the server; worth trying again."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0


def parse_smtp_url(
    url: str, user: str | None = None, password: str | None = None
) -> SmtpServer:
    """Read `SMTP_URL`; `user` and `password` (from the environment) win over
    the URL's own. Raise `ConfigError` saying what to write instead."""
    parts = urlsplit(url)
    security = SCHEMES.get(parts.scheme.lower())
    if security is None or not parts.hostname:
        raise ConfigError(
            f"SMTP_URL {_without_password(url)!r} is not understood; write it like "
            "smtp+starttls://mail.example.fi:587, smtps://mail.example.fi:465 or, "
            "for a relay on this machine, smtp://localhost:25"
        )
    if security == "none" and parts.hostname not in LOCAL_HOSTS:
        raise ConfigError(
            f"SMTP_URL: smtp:// sends in clear text; use smtp+starttls:// or smtps:// "
            f"for {parts.hostname}, or a relay on this machine"
        )
    try:
        port = parts.port or DEFAULT_PORTS[security]
    except ValueError:
        raise ConfigError("SMTP_URL has a port that is not a number") from None
    user = user or (unquote(parts.username) if parts.username else None)
    password = password or (unquote(parts.password) if parts.password else None)
    if bool(user) != bool(password):
        raise ConfigError("SMTP_USER and SMTP_PASSWORD must be set together")

    return SmtpServer(parts.hostname, port, security, user, password)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url

    return url.replace(f":{parts.password}@", ":***@")


class Mailer:
    """Hands one message at a time to the SMTP server, or to the outbox folder."""

    def __init__(self, server: SmtpServer | None, outbox: Path) -> None:
        self.server = server
        self.outbox = outbox

    def send(self, message: EmailMessage, name: str) -> None:
        """Send `message`; raise `MailError` when it may be tried again."""
        if self.server is None:
            self._write(message, name)
            return
        try:
            with self._connect(self.server) as smtp:
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            # The class only: a server's reply may quote the addresses.
            raise MailError(f"SMTP: {type(exc).__name__}") from exc

    def _connect(self, server: SmtpServer) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if server.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                server.host, server.port, timeout=server.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        try:
            if server.security == "starttls":
                smtp.starttls(context=context)
            if server.user and server.password:
                smtp.login(server.user, server.password)
        except BaseException:
            smtp.close()
            raise

        return smtp

    def _write(self, message: EmailMessage, name: str) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / f"{name}.eml"
        partial = path.with_suffix(".part")
        partial.write_bytes(bytes(message))
        partial.replace(path)
        logger.info("mail: %s written to the outbox", name)


def get_mailer(app: Flask) -> Mailer:
    """Return the app's mailer: SMTP when `SMTP_URL` is set, else the outbox."""
    settings = app.config["POLKU"]
    server = None
    if settings.smtp_url:
        server = parse_smtp_url(
            settings.smtp_url, settings.smtp_user, settings.smtp_password
        )

    return Mailer(server, settings.outbox)
