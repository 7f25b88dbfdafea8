"""The web chat channel: replies wait in the database until the page fetches them."""

from __future__ import annotations

import secrets


class WebChannel:
    """Delivery is the page's next poll, so sending only names the message."""

    name = "web"
    max_segments: int | None = None

    def send(self, to: str, body: str) -> str:
        return f"web-{secrets.token_hex(12)}"
