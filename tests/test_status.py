"""Delivery status callbacks: recorded per outbound message, never backwards."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.db import get_db
from bot.models import Client, Message
from tests.factories import ACCOUNT_SID, message_params, post_signed
from tests.helpers import run_worker

PATH = "/twilio/status"


def status_params(sid: str, status: str, **fields: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": ACCOUNT_SID,
        **fields,
    }


@pytest.fixture
def sent_sid(app, client, twilio) -> str:
    post_signed(client, "/twilio/messages", message_params(Body="Hei"))
    run_worker(app)
    [sent] = twilio.messages

    return sent.sid


def stored(app, sid: str) -> Message:
    with get_db(app).session() as session:
        query = select(Message).where(Message.provider_sid == sid)
        return session.scalars(query).one()


def test_delivered_status_is_recorded(app, client, sent_sid):
    response = post_signed(client, PATH, status_params(sent_sid, "delivered"))

    assert response.status_code == 204
    assert stored(app, sent_sid).status == "delivered"


def test_late_sent_callback_does_not_undo_delivered(app, client, sent_sid):
    post_signed(client, PATH, status_params(sent_sid, "delivered"))
    post_signed(client, PATH, status_params(sent_sid, "sent"))

    assert stored(app, sent_sid).status == "delivered"


def test_undelivered_with_error_keeps_the_code(app, client, sent_sid):
    params = status_params(sent_sid, "undelivered", ErrorCode="30003")

    post_signed(client, PATH, params)

    message = stored(app, sent_sid)
    assert (message.status, message.error_code) == ("undelivered", 30003)


def test_error_21610_opts_the_client_out(app, client, sent_sid):
    post_signed(client, PATH, status_params(sent_sid, "failed", ErrorCode="21610"))

    with get_db(app).session() as session:
        assert session.scalars(select(Client)).one().opted_out


def test_unknown_message_is_acknowledged_and_ignored(app, client):
    response = post_signed(client, PATH, status_params("SM" + "0" * 32, "delivered"))

    assert response.status_code == 204


def test_status_callback_needs_a_signature(app, client, sent_sid):
    response = client.post(PATH, data=status_params(sent_sid, "failed"))

    assert response.status_code == 403
    assert stored(app, sent_sid).status == "sent"


def test_status_callback_with_bad_error_code_is_refused(app, client, sent_sid):
    params = status_params(sent_sid, "failed", ErrorCode="abc")

    assert post_signed(client, PATH, params).status_code == 400


def test_undocumented_status_is_not_stored(app, client, sent_sid):
    response = post_signed(client, PATH, status_params(sent_sid, "x" * 300))

    assert response.status_code == 204
    assert stored(app, sent_sid).status == "sent"
