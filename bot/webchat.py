"""The web chat: a page where anyone can talk to Polku without a Twilio account.

Messages typed here take the same path as SMS: stored, queued, answered by the
worker. The page polls for replies; the browser is known by a signed cookie.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    session,
)
from sqlalchemy import select

from bot.channels import WEB
from bot.db import get_db
from bot.limits import screen_inbound
from bot.messaging import (
    FAILED,
    OUTBOUND,
    SUPPRESSED,
    TRANSLATING,
    Inbound,
    address_hash,
    clean_text,
    queue_inbound,
    receive,
)
from bot.models import Client, Message
from bot.queue import get_queue
from bot.segments import MAX_BODY_CHARS
from translations import LANGUAGES_BY_CODE, text

bp = Blueprint("webchat", __name__)

PRIVACY_FILE = Path(__file__).resolve().parent.parent / "PRIVACY.md"

MESSAGE_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
PAGE_SIZE = 100
# Replies that were never sent (after STOP, or refused) are not shown either,
# nor a counsellor's reply still on its way into the client's language.
HIDDEN_STATUSES = (SUPPRESSED, FAILED, TRANSLATING)


def _chat_id(create: bool) -> str | None:
    chat_id = session.get("chat_id")
    if chat_id is None and create:
        chat_id = secrets.token_hex(16)
        session["chat_id"] = chat_id
        session.permanent = True

    return chat_id


@bp.get("/")
def page() -> str:
    return render_template("chat.html", text=text)


@bp.get("/privacy")
def privacy() -> Response:
    """The privacy notice in full, linked from the notice every client gets."""
    body = PRIVACY_FILE.read_text(encoding="utf-8")

    return Response(body, mimetype="text/plain")


@bp.post("/chat/messages")
def post_message() -> tuple[dict[str, Any], int]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, "send JSON with the fields id and text")
    body, browser_id = data.get("text"), data.get("id")
    if not isinstance(body, str) or not body.strip():
        abort(400, "text must be a non-empty string")
    settings = current_app.config["POLKU"]
    # Refused, not cut: the browser keeps the text, nothing is lost.
    longest = min(MAX_BODY_CHARS, settings.max_message_chars)
    if len(body) > longest:
        abort(413, f"a message can have at most {longest} characters")
    if not isinstance(browser_id, str) or not MESSAGE_ID.match(browser_id):
        abort(400, "id must be 8 to 64 letters, digits or dashes")

    chat_id = _chat_id(create=True)
    inbound = Inbound(
        channel=WEB,
        address=chat_id,
        body=clean_text(body),
        provider_sid=f"web-in-{browser_id}",
    )
    db = get_db()
    message, created = receive(db, settings.secret_key, inbound)
    if not created and message.client_id != _client_id(chat_id):
        abort(409, "that message id belongs to another chat")
    sender = address_hash(settings.secret_key, WEB, chat_id)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # Over a limit: stored, not answered; the chat shows the notice, if any.
    if created and screen_inbound(app, db, message, sender, inbound.body):
        return {"id": message.id}, 201
    queue_inbound(get_queue(), message, settings.retry_intervals)

    return {"id": message.id}, 201 if created else 200


@bp.get("/chat/messages")
def list_messages() -> dict[str, Any]:
    after = request.args.get("after", 0, type=int)
    chat_id = _chat_id(create=False)
    client_id = _client_id(chat_id) if chat_id else None
    if client_id is None:
        return {"messages": [], "language": None, "rtl": False}

    with get_db().session() as db_session:
        client = db_session.get(Client, client_id)
        query = (
            select(Message)
            .where(
                Message.client_id == client_id,
                Message.id > after,
                ~(
                    (Message.direction == OUTBOUND)
                    & Message.status.in_(HIDDEN_STATUSES)
                ),
            )
            .order_by(Message.id)
            .limit(PAGE_SIZE)
        )
        messages = [
            {"id": m.id, "direction": m.direction, "text": m.body, "status": m.status}
            for m in db_session.scalars(query)
        ]
    language = LANGUAGES_BY_CODE.get(client.language or "")

    return {
        "messages": messages,
        "language": language.code if language else None,
        "rtl": bool(language and language.rtl),
    }


def _client_id(chat_id: str) -> int | None:
    key = address_hash(current_app.config["POLKU"].secret_key, WEB, chat_id)
    with get_db().session() as db_session:
        query = select(Client.id).where(Client.address_hash == key)
        return db_session.scalars(query).one_or_none()
