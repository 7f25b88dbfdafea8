"""Abuse limits: fast senders, SMS pumping, long messages, endless restarts."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import func, select

from bot import create_app
from bot.db import get_db
from bot.errors import ConfigError
from bot.limits import get_limits
from bot.metrics import COUNTERS, field
from bot.models import Client, Message
from bot.queue import get_queue
from bot.settings import load_settings
from tests.factories import CLIENT_NUMBER, message_params, post_signed, whatsapp_params
from tests.helpers import run_worker
from translations import text
from workers.maintenance import requeue_pending

PATH = "/twilio/messages"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
FOREIGN_NUMBER = "+46701234567"


def limit(app, **values: object) -> None:
    app.config["POLKU"] = app.config["POLKU"].with_overrides(**values)


def send(client, *bodies: str, sender: str = CLIENT_NUMBER) -> None:
    for body in bodies:
        response = post_signed(client, PATH, message_params(Body=body, From=sender))
        assert response.status_code == 200
        assert b"<Response></Response>" in response.data


def statuses(app, direction: str = "in") -> list[str]:
    with get_db(app).session() as session:
        query = select(Message.status).where(Message.direction == direction)
        return list(session.scalars(query.order_by(Message.id)))


def counted(app, kind: str, channel: str = "sms") -> int:
    series = field("polku_limited_total", {"kind": kind, "channel": channel})
    value = get_queue(app).connection.hget(COUNTERS, series)

    return int(value or 0)


def told(twilio, key: str, **values: int) -> int:
    notice = text(key, "en", **values)

    return sum(notice in message.body for message in twilio.messages)


def test_fast_sender_is_stored_not_answered_and_told_once(app, client, twilio, caplog):
    limit(app, inbound_per_minute=3)
    caplog.set_level(logging.INFO)

    send(client, "Hei", "Moi", "Terve", "Hei taas", "Haloo", "Kuuluuko")
    run_worker(app)

    assert statuses(app) == ["processed"] * 3 + ["limited"] * 3
    assert told(twilio, "limit.inbound_rate") == 1
    assert counted(app, "inbound_rate") == 3
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "bot.limits"
    ]
    assert len(warned) == 1
    assert re.fullmatch(
        r"limit inbound_rate: message \d+ of client \d+ not answered", warned[0]
    )
    assert CLIENT_NUMBER.removeprefix("+") not in caplog.text


@SQLITE
def test_sweep_never_queues_a_limited_message_again(app, client, twilio):
    limit(app, inbound_per_minute=1)
    send(client, "Hei", "Moi")
    run_worker(app)

    assert requeue_pending(grace_seconds=0) == 0
    run_worker(app)
    assert statuses(app) == ["processed", "limited"]


@SQLITE
def test_daily_limit_names_where_to_reach_a_person(app, client, twilio):
    limit(app, inbound_per_day=2, service_contact="puh. 015 194 2000")

    send(client, "Hei", "Moi", "Terve", "Vielä")
    run_worker(app)

    assert statuses(app) == ["processed", "processed", "limited", "limited"]
    (notice,) = [m.body for m in twilio.messages if "puh. 015 194 2000" in m.body]
    assert notice.startswith(text("limit.inbound_daily", "fi", contact="")[:40])
    assert counted(app, "inbound_daily") == 2


@SQLITE
def test_stop_always_passes_the_limit(app, client, twilio):
    limit(app, inbound_per_minute=1)

    send(client, "Hei", "STOP")
    run_worker(app)

    assert statuses(app) == ["processed", "ignored"]
    with get_db(app).session() as session:
        assert session.scalars(select(Client)).one().opted_out
    assert told(twilio, "limit.inbound_rate") == 0


@SQLITE
def test_web_chat_over_the_limit_is_stored_and_shows_the_notice(app, client):
    limit(app, inbound_per_minute=1)

    for number in range(3):
        response = client.post(
            "/chat/messages", json={"id": f"browser-{number:04d}", "text": "Hei"}
        )
        assert response.status_code == 201
    run_worker(app)

    assert statuses(app) == ["processed", "limited", "limited"]
    shown = client.get("/chat/messages").get_json()["messages"]
    notices = [m for m in shown if text("limit.inbound_rate", "en") in m["text"]]
    assert len(notices) == 1
    assert counted(app, "inbound_rate", "web") == 2


@SQLITE
def test_limits_are_not_applied_without_redis_and_that_is_logged_once(app, capfd):
    limit(app, inbound_per_minute=1)
    get_limits(app).inbound("a-sender")  # Redis answers: any earlier outage is over
    dead = app.config["POLKU"].with_overrides(redis_url="redis://127.0.0.1:1")
    dead_client = create_app({"settings": dead}).test_client()

    send(dead_client, "Hei", "Moi", "Terve")

    assert statuses(app) == ["received"] * 3
    assert capfd.readouterr().err.count("no limits apply") == 1


def test_replies_over_the_hourly_limit_wait_and_are_sent_later(app, client, twilio):
    limit(app, outbound_per_hour=2)
    send(client, "Hei", "1")
    run_worker(app)

    assert len(twilio.messages) == 2
    waiting = statuses(app, "out").count("queued")
    assert waiting >= 2
    assert counted(app, "outbound_recipient") >= 1

    # The hour passes (its counter goes), and the minute sweep queues them again.
    for _ in range(waiting):
        connection = get_queue(app).connection
        connection.delete(*connection.keys("polku:limit:outbound_recipient:*"))
        requeue_pending(grace_seconds=0)
        run_worker(app)
        if "queued" not in statuses(app, "out"):
            break

    assert set(statuses(app, "out")) == {"sent"}
    with get_db(app).session() as session:
        query = select(Message.body).where(Message.direction == "out")
        assert [m.body for m in twilio.messages] == list(
            session.scalars(query.order_by(Message.id))
        )


@SQLITE
def test_global_limit_holds_replies_to_everyone(app, client, twilio):
    limit(app, outbound_per_minute=1)

    send(client, "Hei")
    send(client, "Hei", sender="+358401231234")
    run_worker(app)

    assert len(twilio.messages) == 1
    assert statuses(app, "out") == ["sent", "queued"]
    assert counted(app, "outbound_global") == 1


@SQLITE
def test_sms_outside_the_allowed_countries_is_refused(app, client, twilio):
    send(client, "Hei", sender=FOREIGN_NUMBER)
    run_worker(app)

    assert twilio.messages == []
    assert statuses(app, "out") == ["refused"]
    assert counted(app, "country") == 1


@SQLITE
def test_refused_country_is_logged_with_ids_only(app, client, caplog):
    send(client, "Hei", sender=FOREIGN_NUMBER)

    # In this process (a worker's job runs in a forked work horse).
    with app.app_context(), get_db(app).session() as session:
        message = session.scalars(select(Message)).one()
        sender = session.get(Client, message.client_id)
        hold = get_limits(app).gate(message, sender)

    assert hold is not None and hold.refused
    assert f"message {message.id} refused, not in SMS_ALLOWED_COUNTRY" in caplog.text
    assert FOREIGN_NUMBER.removeprefix("+") not in caplog.text


@SQLITE
def test_whatsapp_and_listed_countries_are_not_refused(app, client, twilio):
    limit(app, sms_allowed_country_codes=("358", "46"))
    send(client, "Hei", sender=FOREIGN_NUMBER)
    whatsapp = whatsapp_params(From="whatsapp:+380501234567")
    post_signed(client, PATH, whatsapp)
    run_worker(app)

    assert statuses(app, "out") == ["sent", "sent"]


@SQLITE
def test_webhook_over_max_request_bytes_is_refused_and_nothing_stored(app, client):
    size = app.config["POLKU"].max_request_bytes
    params = message_params(Body="x" * size)

    response = post_signed(client, PATH, params)

    assert response.status_code == 413
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0


@SQLITE
def test_long_message_is_kept_whole_and_only_its_beginning_read(app, client, twilio):
    limit(app, max_message_chars=300)
    body = "Olen hitsaaja. " * 40

    send(client, body)
    run_worker(app)

    with get_db(app).session() as session:
        stored = session.scalars(select(Message).where(Message.direction == "in"))
        assert stored.one().body == body
    assert told(twilio, "limit.long_message", count=300) == 1
    assert counted(app, "message_length") == 1


@SQLITE
def test_web_chat_refuses_a_message_over_the_limit(app, client):
    limit(app, max_message_chars=200)

    response = client.post(
        "/chat/messages", json={"id": "browser-1", "text": "a" * 201}
    )

    assert response.status_code == 413
    assert b"at most 200 characters" in response.data
    assert statuses(app) == []


@SQLITE
def test_restarting_over_and_over_is_refused_and_told_once(app, client, twilio):
    limit(app, conversations_per_day=2)

    send(client, "Hei", "1", "ALUSTA", "ALUSTA", "ALUSTA")
    run_worker(app)

    bodies = [m.body for m in twilio.messages]
    refusal = text("limit.conversations", "fi", contact=text("contact.default", "fi"))
    assert bodies.count(refusal) == 1
    assert bodies[-1] == refusal
    assert statuses(app) == ["processed"] * 5
    assert counted(app, "conversations") == 2


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INBOUND_PER_MINUTE": "-1"}, "INBOUND_PER_MINUTE -1 must be 0"),
        ({"OUTBOUND_PER_HOUR": "many"}, "OUTBOUND_PER_HOUR 'many' is not a number"),
        ({"CONVERSATIONS_PER_DAY": "-5"}, "CONVERSATIONS_PER_DAY -5 must be 0"),
        ({"MAX_MESSAGE_CHARS": "100"}, "use at least 160"),
        ({"SMS_ALLOWED_COUNTRY_CODES": "fi"}, "like 358,46,372"),
        ({"SMS_ALLOWED_COUNTRY_CODES": "358,*"}, "or be \\* for every country"),
    ],
)
def test_bad_limit_setting_is_named_with_what_to_do(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({"SECRET_KEY": "k", **env}, instance_path=tmp_path)


@pytest.mark.parametrize(
    ("raw", "codes"),
    [("", ("358",)), ("+358, 46,372", ("358", "46", "372")), ("*", ("*",))],
)
def test_allowed_country_codes_are_read_with_or_without_plus(tmp_path, raw, codes):
    env = {"SECRET_KEY": "k", "SMS_ALLOWED_COUNTRY_CODES": raw}

    assert load_settings(env, instance_path=tmp_path).sms_allowed_country_codes == codes
