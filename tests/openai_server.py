"""A local HTTP server that speaks OpenAI's chat-completions API, for the tests.

The real `openai` client talks to it. It records every request and answers
from a script: a reply's content, an HTTP error status, or a delay (which
`release` cuts short, so that a test can hold a request while it kills a worker).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    """One scripted answer: content, or an error status, after a delay."""

    content: str = "{}"
    status: int = 200
    delay: float = 0.0


class FakeOpenAI:
    """Serve /v1/chat/completions on a free local port."""

    model_version = "fake-model-2026-12-01"

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: deque[Step] = deque()
        self.default = Step()
        # Answers by what was asked, before the script: see `answer_with`.
        self.responder: Callable[[dict[str, Any]], Step | str | None] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                step = server._next(self.path, body, self.headers.get("Authorization"))
                if step.delay:
                    server._wake.wait(step.delay)
                if step.status != 200:
                    error = {"error": {"message": "scripted", "type": "server_error"}}
                    self._send(step.status, error)
                    return
                self._send(200, server._completion(body, step.content))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def reply(self, *steps: Step | str) -> None:
        """Queue answers; a string is the content of a successful one."""
        with self._lock:
            for step in steps:
                self.script.append(Step(step) if isinstance(step, str) else step)

    def answer_with(
        self, responder: Callable[[dict[str, Any]], Step | str | None]
    ) -> None:
        """Answer each request with `responder(body)`; None: the script's turn."""
        self.responder = responder

    def release(self) -> None:
        """End every delay now: held requests are answered at once."""
        wake, self._wake = self._wake, threading.Event()
        wake.set()

    def reset(self) -> None:
        self.release()
        with self._lock:
            self.requests.clear()
            self.script.clear()
            self.responder = None
            self.default = Step()

    def texts(self) -> str:
        """Everything the model was ever sent, as one string."""
        return "\n".join(
            message["content"]
            for request in self.requests
            for message in request["body"].get("messages", [])
        )

    def close(self) -> None:
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _next(self, path: str, body: dict[str, Any], auth: str | None) -> Step:
        with self._lock:
            self.requests.append({"path": path, "body": body, "auth": auth})
            answer = self.responder(body) if self.responder else None
            if answer is not None:
                return Step(answer) if isinstance(answer, str) else answer
            return self.script.popleft() if self.script else self.default

    def _completion(self, body: dict[str, Any], content: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_version,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
        }


def template_of(body: dict[str, Any]) -> str | None:
    """The prompt template a request was made from (its schema's name)."""
    response_format = body.get("response_format") or {}

    return (response_format.get("json_schema") or {}).get("name")


def client_text(body: dict[str, Any]) -> str:
    """The user message of a request: the client's quoted words."""
    return "\n".join(
        message["content"]
        for message in body.get("messages", [])
        if message["role"] == "user"
    )
