"""The Twilio webhooks: signatures, malformed requests, storage and queueing."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from bot import create_app
from bot.db import get_db
from bot.models import Client, Message
from tests.factories import (
    AUTH_TOKEN,
    CLIENT_NUMBER,
    message_params,
    post_signed,
    signature,
    whatsapp_params,
)
from tests.helpers import queued_jobs

PATH = "/twilio/messages"


def count(app: Flask, model: type) -> int:
    with get_db(app).session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_inbound_sms_is_stored_queued_and_answered_with_empty_twiml(app, client):
    response = post_signed(client, "/twilio/messages", message_params(Body="Hei"))

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert b"<Response></Response>" in response.data
    with get_db(app).session() as session:
        message = session.scalars(select(Message)).one()
        assert (message.direction, message.channel, message.body) == (
            "in",
            "sms",
            "Hei",
        )
    assert queued_jobs(app) == 1


def test_whatsapp_sender_is_a_whatsapp_client(app, client):
    post_signed(client, "/twilio/messages", whatsapp_params())

    with get_db(app).session() as session:
        stored = session.scalars(select(Client)).one()
        assert (stored.channel, stored.address) == ("whatsapp", CLIENT_NUMBER)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": ""},
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
    ],
    ids=["missing", "empty", "forged"],
)
def test_webhook_rejects_missing_or_forged_signature(app, client, headers):
    response = client.post("/twilio/messages", data=message_params(), headers=headers)

    assert response.status_code == 403
    assert count(app, Message) == 0
    assert queued_jobs(app) == 0


def test_webhook_rejects_signature_made_with_another_token(app, client):
    params = message_params()
    forged = signature("/twilio/messages", params, token=AUTH_TOKEN[::-1])

    response = client.post(
        "/twilio/messages", data=params, headers={"X-Twilio-Signature": forged}
    )

    assert response.status_code == 403
    assert count(app, Message) == 0


def test_webhook_rejects_signature_for_another_url(app, client):
    response = post_signed(
        client, "/twilio/messages", message_params(), signed_as="/twilio/status"
    )

    assert response.status_code == 403


def test_webhook_rejects_signed_body_that_was_changed(app, client):
    params = message_params(Body="original")
    header = {"X-Twilio-Signature": signature("/twilio/messages", params)}

    tampered = {**params, "Body": "changed"}
    response = client.post("/twilio/messages", data=tampered, headers=header)

    assert response.status_code == 403


def test_webhook_is_refused_when_no_auth_token_is_configured(app):
    app.config["POLKU"] = app.config["POLKU"].with_overrides(
        twilio_account_sid=None, twilio_auth_token=None
    )

    response = post_signed(app.test_client(), "/twilio/messages", message_params())

    assert response.status_code == 403
    assert count(app, Message) == 0


def test_retried_webhook_is_stored_and_queued_once(app, client):
    params = message_params()

    first = post_signed(client, "/twilio/messages", params)
    second = post_signed(client, "/twilio/messages", params)

    assert first.status_code == second.status_code == 200
    assert count(app, Message) == 1
    assert queued_jobs(app) == 1


@pytest.mark.parametrize("missing", ["MessageSid", "From", "To"])
def test_webhook_without_required_field_is_refused(app, client, missing):
    params = message_params()
    del params[missing]

    response = post_signed(client, "/twilio/messages", params)

    assert response.status_code == 400
    assert missing.encode() in response.data
    assert count(app, Message) == count(app, Client) == 0


def test_webhook_with_huge_body_is_refused(app, client):
    params = message_params(Body="x" * (10 * 1024 * 1024))

    response = post_signed(client, "/twilio/messages", params)

    assert response.status_code == 413
    assert count(app, Message) == 0


@pytest.mark.parametrize(
    "raw",
    [b"Body=%FF%FE&From=%2B358401", b"Body=\xff\xfe&From=x"],
    ids=["percent-encoded", "raw-bytes"],
)
def test_webhook_with_invalid_utf8_is_refused(app, client, raw):
    response = client.post(
        "/twilio/messages",
        data=raw,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": "irrelevant"},
    )

    assert response.status_code == 400
    assert count(app, Message) == 0


def test_webhook_with_json_body_is_refused(app, client):
    response = client.post("/twilio/messages", json=message_params())

    assert response.status_code == 415
    assert count(app, Message) == 0


def test_webhook_from_another_account_is_refused(app, client):
    params = message_params(AccountSid="AC" + "f" * 32)

    response = post_signed(client, "/twilio/messages", params)

    assert response.status_code == 403


def test_webhook_error_never_shows_a_traceback(client):
    response = client.post("/twilio/messages", data=b"\xff", content_type="text/plain")

    assert response.status_code == 415
    assert b"Traceback" not in response.data


def test_message_is_kept_when_redis_is_down_and_queued_on_retry(app, client):
    dead_redis = app.config["POLKU"].with_overrides(redis_url="redis://127.0.0.1:1")
    params = message_params()

    down = post_signed(create_app({"settings": dead_redis}).test_client(), PATH, params)

    assert down.status_code == 200
    with get_db(app).session() as session:
        message = session.scalars(select(Message)).one()
        assert message.status == "received"
    assert queued_jobs(app) == 0

    post_signed(client, PATH, params)
    assert count(app, Message) == 1
    assert queued_jobs(app) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"MessageSid": "SM123"},
        {"MessageSid": "SM" + "0" * 32 + "' OR 1=1"},
        {"From": "+358" + "1" * 200},
        {"From": "<script>"},
    ],
    ids=["short-sid", "injected-sid", "long-number", "markup"],
)
def test_webhook_with_malformed_ids_is_refused(app, client, fields):
    response = post_signed(client, PATH, message_params(**fields))

    assert response.status_code == 400
    assert count(app, Message) == 0


def test_nul_characters_are_dropped_not_fatal(app, client):
    response = post_signed(client, PATH, message_params(Body="Hei\x00 maailma"))

    assert response.status_code == 200
    with get_db(app).session() as session:
        assert session.scalars(select(Message.body)).one() == "Hei maailma"
