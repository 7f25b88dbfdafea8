"""A local HTTP server that speaks the part of Twilio's REST API Polku uses.

The real `twilio` client sends to it (TWILIO_API_URL); tests read what it
received and can make it fail the next requests, or hold them unanswered (a
timeout) without accepting the message.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")
ACCOUNT_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})\.json$")


@dataclass
class SentMessage:
    """One Messages.json request as Twilio would have received it."""

    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    sid: str
    auth: tuple[str, str]
    content_sid: str | None = None
    content_variables: str | None = None


@dataclass
class TwilioState:
    messages: list[SentMessage] = field(default_factory=list)
    failures: list[tuple[int, int]] = field(default_factory=list)
    # Seconds to hold each of the next requests before refusing it.
    stalls: list[float] = field(default_factory=list)
    wake: threading.Event = field(default_factory=threading.Event)
    # WhatsApp recipients outside the 24-hour window: free text is refused.
    closed_windows: set[str] = field(default_factory=set)
    requests: int = 0
    # When set, a request with another auth token is refused (401, 20003).
    auth_token: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeTwilio:
    """Start with `start()`; `url` is what TWILIO_API_URL should be."""

    def __init__(self) -> None:
        self.state = TwilioState()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeTwilio:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        self.release()
        with self.state.lock:
            self.state.messages.clear()
            self.state.failures.clear()
            self.state.stalls.clear()
            self.state.closed_windows.clear()
            self.state.requests = 0
            self.state.auth_token = None

    def fail_next(self, times: int, status: int = 500, code: int = 20500) -> None:
        """Answer the next `times` message requests with `status` and error `code`."""
        with self.state.lock:
            self.state.failures.extend([(status, code)] * times)

    def stall_next(self, times: int, seconds: float) -> None:
        """Hold the next `times` message requests for `seconds`, then refuse
        them (503) without sending: longer than TWILIO_TIMEOUT, a timeout."""
        with self.state.lock:
            self.state.stalls.extend([seconds] * times)

    def release(self) -> None:
        """Cut every held request short now."""
        with self.state.lock:
            wake, self.state.wake = self.state.wake, threading.Event()
        wake.set()

    def close_window(self, to: str) -> None:
        """Refuse free text to WhatsApp recipient `to`, as WhatsApp does after
        24 hours of silence (error 63016); templates still go."""
        with self.state.lock:
            self.state.closed_windows.add(to)

    def open_window(self, to: str) -> None:
        """`to` has written: free text goes again for 24 hours."""
        with self.state.lock:
            self.state.closed_windows.discard(to)

    @property
    def messages(self) -> list[SentMessage]:
        with self.state.lock:
            return list(self.state.messages)

    def bodies_to(self, to: str) -> list[str]:
        return [message.body for message in self.messages if message.to == to]


def _handler(state: TwilioState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _reply(self, status: int, payload: dict[str, object]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _resource(self, path: re.Pattern[str]) -> re.Match[str] | None:
            """Match the path and the account's credentials; else answer 404/401."""
            match = path.match(self.path)
            if not match:
                self._reply(404, {"code": 20404, "message": "not found", "status": 404})
                return None
            auth = _basic_auth(self.headers.get("Authorization", ""))
            if not _authorised(state, auth, match.group(1)):
                self._reply(401, {"code": 20003, "message": "auth", "status": 401})
                return None
            return match

        def do_GET(self) -> None:
            """The account resource: what `doctor --online` fetches."""
            match = self._resource(ACCOUNT_PATH)
            if match is None:
                return
            payload = {"sid": match.group(1), "status": "active", "type": "Full"}
            self._reply(200, payload)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode("utf-8"))
            match = self._resource(MESSAGES_PATH)
            if match is None:
                return
            auth = _basic_auth(self.headers.get("Authorization", ""))

            with state.lock:
                state.requests += 1
                failure = state.failures.pop(0) if state.failures else None
                stall = state.stalls.pop(0) if state.stalls and not failure else None
                wake = state.wake
            if stall is not None:
                wake.wait(stall)
                try:
                    self._reply(503, {"code": 20503, "message": "slow", "status": 503})
                except OSError:
                    pass  # the client gave up waiting, as it should
                return

            with state.lock:
                content_sid = form.get("ContentSid", [None])[0]
                if (
                    failure is None
                    and content_sid is None
                    and form["To"][0] in state.closed_windows
                ):
                    failure = (400, 63016)
                if failure is None:
                    sent = SentMessage(
                        account_sid=match.group(1),
                        to=form["To"][0],
                        from_=form["From"][0],
                        body=form.get("Body", [""])[0],
                        status_callback=form.get("StatusCallback", [None])[0],
                        sid="SM" + secrets.token_hex(16),
                        auth=auth,
                        content_sid=content_sid,
                        content_variables=form.get("ContentVariables", [None])[0],
                    )
                    state.messages.append(sent)
            if failure is not None:
                status, code = failure
                self._reply(status, {"code": code, "message": "fail", "status": status})
                return
            self._reply(
                201,
                {
                    "sid": sent.sid,
                    "account_sid": sent.account_sid,
                    "to": sent.to,
                    "from": sent.from_,
                    "body": sent.body,
                    "status": "queued",
                    "num_segments": "1",
                    "direction": "outbound-api",
                },
            )

    return Handler


def _authorised(
    state: TwilioState, auth: tuple[str, str] | None, account_sid: str
) -> bool:
    if auth is None or auth[0] != account_sid:
        return False

    return state.auth_token is None or auth[1] == state.auth_token


def _basic_auth(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")

    return user, password
