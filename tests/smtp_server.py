"""A real SMTP server for the tests (aiosmtpd): it keeps what it receives, and can
be taken down and brought back to play an outage."""

from __future__ import annotations

import email
import socket
import threading
from email.message import EmailMessage
from email.policy import default

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class _Keeper:
    def __init__(self, server: LocalSmtp) -> None:
        self.server = server

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        if self.server.refuse:
            return "451 4.3.0 try again later"
        message = email.message_from_bytes(envelope.content, policy=default)
        with self.server.lock:
            self.server.received.append((list(envelope.rcpt_tos), message))

        return "250 OK"


class LocalSmtp:
    """An SMTP server on 127.0.0.1; `messages` are what it accepted."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()
        self.refuse = False
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [message for _, message in self.received]

    def recipients(self) -> list[list[str]]:
        with self.lock:
            return [rcpt for rcpt, _ in self.received]

    def start(self) -> LocalSmtp:
        self._controller = Controller(
            _Keeper(self), hostname="127.0.0.1", port=self.port
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        """Take the server down: connections are refused until `start`."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
        self.refuse = False
        if self._controller is None:
            self.start()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
