"""End to end: webhook, real RQ workers, conversation, and the local Twilio server."""

from __future__ import annotations

from flask import Flask
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from bot import messaging
from bot.db import get_db
from bot.models import Client, Message
from bot.queue import get_queue
from tests.factories import (
    CLIENT_NUMBER,
    SMS_FROM,
    WHATSAPP_FROM,
    message_params,
    post_signed,
    whatsapp_params,
)
from tests.helpers import run_worker, wait_for, worker_processes
from translations import text

PATH = "/twilio/messages"


def say(client, body: str, **fields: str) -> None:
    response = post_signed(client, PATH, message_params(Body=body, **fields))
    assert response.status_code == 200


def outbound(app: Flask) -> list[Message]:
    with get_db(app).session() as session:
        query = select(Message).where(Message.direction == "out").order_by(Message.id)
        return list(session.scalars(query))


def test_first_sms_gets_ai_notice_and_language_menu(app, client, twilio):
    say(client, "Hei")
    run_worker(app)

    [sent] = twilio.messages
    assert (sent.to, sent.from_) == (CLIENT_NUMBER, SMS_FROM)
    assert "tekoäly" in sent.body and "(AI)" in sent.body
    assert "4 Українська" in sent.body and "9 Eesti" in sent.body
    assert sent.status_callback == "https://polku.example.test/twilio/status"
    [reply] = outbound(app)
    assert (reply.status, reply.provider_sid) == ("sent", sent.sid)


def test_choosing_a_language_gives_notice_and_welcome_in_it(app, client, twilio):
    say(client, "Hello")
    run_worker(app)
    say(client, "5")
    run_worker(app)

    notice, welcome, question = twilio.bodies_to(CLIENT_NUMBER)[1:]
    assert "ИИ" in notice
    assert welcome.startswith(text("welcome", "ru"))
    assert question.startswith(text("interview.municipality", "ru"))
    with get_db(app).session() as session:
        assert session.scalars(select(Client.language)).one() == "ru"


def test_whatsapp_round_trip_answers_on_whatsapp(app, client, twilio):
    post_signed(client, PATH, whatsapp_params(Body="Salaam"))
    run_worker(app)

    [sent] = twilio.messages
    assert sent.to == f"whatsapp:{CLIENT_NUMBER}"
    assert sent.from_ == f"whatsapp:{WHATSAPP_FROM}"


def test_retried_webhook_gets_one_reply(app, client, twilio):
    params = message_params(Body="Hei")
    for _ in range(3):
        post_signed(client, PATH, params)
    run_worker(app)

    assert len(twilio.messages) == 1


def test_quick_messages_are_answered_in_order_by_several_workers(app, client, twilio):
    say(client, "Hei")
    say(client, "3")
    say(client, "HELP")
    say(client, "START")

    with worker_processes(app, 3):
        bodies = wait_for(lambda: len(twilio.messages) >= 6 and twilio.messages)

    texts = [message.body for message in bodies]
    assert "Reply with the number" in texts[0]
    assert texts[1].startswith("You are writing with an automated assistant")
    assert texts[2].startswith("Welcome!")
    assert texts[3].startswith("Which municipality")
    assert texts[4].startswith("Commands:")
    assert texts[5].startswith("Which municipality")


def test_two_clients_are_served_in_parallel(app, client, twilio):
    say(client, "Hei", From="+358401000001")
    say(client, "Hej", From="+358401000002")

    with worker_processes(app, 2):
        wait_for(lambda: len(twilio.messages) == 2)

    assert {m.to for m in twilio.messages} == {"+358401000001", "+358401000002"}


def test_twilio_server_error_on_send_is_retried_and_reply_arrives(app, client, twilio):
    twilio.fail_next(1, status=500)

    say(client, "Hei")
    run_worker(app)

    assert len(twilio.messages) == 1
    [reply] = outbound(app)
    assert (reply.status, reply.attempts) == ("sent", 2)


def test_send_that_keeps_failing_is_marked_failed_and_stays_visible(
    app, client, twilio
):
    twilio.fail_next(10, status=503)

    say(client, "Hei")
    run_worker(app)

    assert twilio.messages == []
    [reply] = outbound(app)
    assert reply.status == "failed"
    failed = FailedJobRegistry(queue=get_queue(app))
    assert len(failed) == 1


def test_permanent_twilio_refusal_is_not_retried(app, client, twilio):
    twilio.fail_next(1, status=400, code=21211)

    say(client, "Hei")
    run_worker(app)

    [reply] = outbound(app)
    assert (reply.status, reply.error_code, reply.attempts) == ("failed", 21211, 1)
    assert twilio.state.requests == 1


def test_stop_opts_out_and_nothing_more_is_sent(app, client, twilio):
    say(client, "Hei")
    run_worker(app)
    say(client, "STOP")
    say(client, "Hello?")
    run_worker(app)

    assert len(twilio.messages) == 1
    with get_db(app).session() as session:
        assert session.scalars(select(Client)).one().opted_out


def test_start_after_stop_resumes_with_the_last_question(app, client, twilio):
    say(client, "Hei")
    run_worker(app)
    say(client, "lopeta")
    say(client, "START")
    run_worker(app)

    resumed, menu = twilio.bodies_to(CLIENT_NUMBER)[1:]
    assert "Welcome back" in resumed
    assert "1 Suomi" in menu


def test_unsubscribed_error_on_send_opts_the_client_out(app, client, twilio):
    twilio.fail_next(1, status=400, code=21610)

    say(client, "Hei")
    run_worker(app)
    say(client, "1")
    run_worker(app)

    assert twilio.messages == []
    with get_db(app).session() as session:
        assert session.scalars(select(Client)).one().opted_out
        statuses = [
            m.status for m in session.scalars(select(Message).order_by(Message.id))
        ]
    # The refused reply failed; the next message was stored but not answered.
    assert statuses == ["processed", "failed", "ignored"]


def test_message_that_keeps_failing_is_given_up_and_later_ones_answered(
    app, client, twilio, monkeypatch
):
    real_respond = messaging.respond

    def respond(client_row, conversation, body, *args, **options):
        if body == "boom":
            raise RuntimeError("conversation bug")
        return real_respond(client_row, conversation, body, *args, **options)

    monkeypatch.setattr(messaging, "respond", respond)
    say(client, "Hei")
    say(client, "boom")
    say(client, "HELP")
    run_worker(app)

    with get_db(app).session() as session:
        query = select(Message).where(Message.direction == "in").order_by(Message.id)
        inbound = session.scalars(query)
        first, boom, help_ = inbound
        assert (first.status, boom.status, help_.status) == (
            "processed",
            "failed",
            "processed",
        )
        # Its own job's three tries, and the later message's job tried it too.
        assert boom.attempts >= 3
    assert twilio.bodies_to(CLIENT_NUMBER)[-1].startswith("Komennot:")
    assert len(FailedJobRegistry(queue=get_queue(app))) >= 1


def test_photo_without_text_is_answered_with_a_request_to_write(app, client, twilio):
    say(client, "Hei")
    say(client, "", NumMedia="1", MediaUrl0="https://api.twilio.com/media/1")
    run_worker(app)

    assert "only read text" in twilio.bodies_to(CLIENT_NUMBER)[-1]


def test_stop_on_whatsapp_opts_out_too(app, client, twilio):
    post_signed(client, PATH, whatsapp_params(Body="Hei"))
    run_worker(app)
    post_signed(client, PATH, whatsapp_params(Body="STOP"))
    post_signed(client, PATH, whatsapp_params(Body="1"))
    run_worker(app)

    assert len(twilio.messages) == 1
    with get_db(app).session() as session:
        assert session.scalars(select(Client)).one().opted_out
