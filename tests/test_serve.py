"""The README's start command: `flask --app wsgi serve` with no configuration."""

from __future__ import annotations

import socket
import subprocess
import sys

import psutil
import requests

from tests.helpers import ROOT, embedded_environment, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_starts_everything_on_embedded_defaults(tmp_path):
    port = free_port()
    env = embedded_environment(tmp_path / "instance")
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "serve"]
    server = subprocess.Popen(  # noqa: S603
        [*command, "--port", str(port)], cwd=ROOT, env=env, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        chat = requests.Session()
        wait_for(lambda: _answers(chat, base), timeout=30)
        posted = chat.post(
            f"{base}/chat/messages", json={"id": "serve-test-1", "text": "Hi"}
        )
        assert posted.status_code == 201

        def replies() -> list[dict]:
            data = chat.get(f"{base}/chat/messages", timeout=5).json()
            return [m for m in data["messages"] if m["direction"] == "out"]

        [reply] = wait_for(replies, timeout=30)
        assert "1 Suomi" in reply["text"]
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert (tmp_path / "instance" / "polku.db").exists()
    # Everything it started stops with it, the embedded Redis included.
    wait_for(lambda: not (tmp_path / "instance" / "redis.sock").exists(), timeout=10)
    leftovers = [
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if str(tmp_path) in " ".join(process.info["cmdline"] or [])
    ]
    assert leftovers == []


def _answers(chat: requests.Session, base: str) -> bool:
    try:
        return chat.get(f"{base}/", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
