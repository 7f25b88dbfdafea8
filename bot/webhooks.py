"""Twilio's webhooks: inbound SMS and WhatsApp messages, and delivery statuses.

The first step of the pipeline. A request is checked (size, encoding, signature,
fields), the message stored and its id queued; Twilio gets empty TwiML at once
and everything slow happens in the worker.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

from flask import Blueprint, Response, abort, current_app, request
from twilio.request_validator import RequestValidator

from bot.channels import SMS, WHATSAPP
from bot.db import get_db
from bot.limits import screen_inbound
from bot.messaging import (
    Inbound,
    address_hash,
    clean_text,
    queue_inbound,
    receive,
    record_status,
)
from bot.queue import get_queue

logger = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__, url_prefix="/twilio")

MESSAGE_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
ADDRESS = re.compile(r"^(whatsapp:)?\+?[0-9A-Za-z]{2,32}$")
# Twilio sends up to 10 attachments; a larger number would not fit the column.
MEDIA_COUNT = re.compile(r"^[0-9]{1,2}$")
ERROR_CODE = re.compile(r"^[0-9]{1,6}$")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
WHATSAPP_PREFIX = "whatsapp:"


def _twiml() -> Response:
    return Response(EMPTY_TWIML, mimetype="text/xml")


def _form() -> dict[str, str]:
    """Parse the form body strictly: Twilio sends UTF-8, anything else is refused."""
    if request.mimetype != "application/x-www-form-urlencoded":
        abort(415, "Twilio webhooks are form-encoded")
    raw = request.get_data(cache=True)
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        abort(400, "the request body is not valid UTF-8")

    return dict(pairs)


def _signed_url() -> str:
    """Return the URL Twilio signed: PUBLIC_BASE_URL + path behind a proxy."""
    base = current_app.config["POLKU"].public_base_url
    if not base:
        return request.url
    query = request.query_string.decode("latin-1")

    return base.rstrip("/") + request.path + (f"?{query}" if query else "")


def _verify_signature(form: dict[str, str]) -> None:
    settings = current_app.config["POLKU"]
    if not settings.twilio_auth_token:
        logger.warning("twilio webhook refused: TWILIO_AUTH_TOKEN is not set")
        abort(403)
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(settings.twilio_auth_token)
    if not signature or not validator.validate(_signed_url(), form, signature):
        logger.warning("twilio webhook refused: bad signature on %s", request.path)
        abort(403)
    if form.get("AccountSid") != settings.twilio_account_sid:
        logger.warning("twilio webhook refused: another account's request")
        abort(403)


def _required(form: dict[str, str], *names: str) -> None:
    missing = [name for name in names if not form.get(name)]
    if missing:
        abort(400, f"missing fields: {', '.join(missing)}")
    if not MESSAGE_SID.match(form["MessageSid"]):
        abort(400, "MessageSid is not a Twilio message SID")


@bp.post("/messages")
def inbound_message() -> Response:
    form = _form()
    _verify_signature(form)
    _required(form, "MessageSid", "From", "To")

    sender = form["From"]
    if not ADDRESS.match(sender):
        abort(400, "From is not a phone number or WhatsApp address")
    channel = WHATSAPP if sender.startswith(WHATSAPP_PREFIX) else SMS
    num_media = form.get("NumMedia") or "0"
    if not MEDIA_COUNT.match(num_media):
        abort(400, "NumMedia is not a number of attachments")
    media_count = int(num_media)
    inbound = Inbound(
        channel=channel,
        address=sender.removeprefix(WHATSAPP_PREFIX),
        body=clean_text(form.get("Body", "")),
        provider_sid=form["MessageSid"],
        media_count=media_count,
    )

    settings = current_app.config["POLKU"]
    db = get_db()
    message, created = receive(db, settings.secret_key, inbound)
    sender = address_hash(settings.secret_key, inbound.channel, inbound.address)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # Over a limit: stored, not answered; Twilio still gets 200, or it retries.
    if created and screen_inbound(app, db, message, sender, inbound.body):
        return _twiml()
    queue_inbound(get_queue(), message, settings.retry_intervals)

    return _twiml()


@bp.post("/status")
def delivery_status() -> Response:
    form = _form()
    _verify_signature(form)
    _required(form, "MessageSid", "MessageStatus")

    error_code: int | None = None
    if form.get("ErrorCode"):
        if not ERROR_CODE.match(form["ErrorCode"]):
            abort(400, "ErrorCode is not a Twilio error code")
        error_code = int(form["ErrorCode"])
    record_status(get_db(), form["MessageSid"], form["MessageStatus"], error_code)

    return Response(status=204)
