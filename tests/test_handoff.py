"""Handoff to counsellors: the Finnish e-mail over a real SMTP server, routing by
municipality, exactly-once sending, an SMTP outage, and "I want a person"."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

import pytest
from flask import Flask
from sqlalchemy import select

from bot.db import get_db
from bot.errors import ConfigError
from bot.handoff import FAILED, PENDING, SENT
from bot.models import AuditEntry, Handoff, utcnow
from bot.queue import get_queue
from bot.settings import load_settings
from flows import load_flows
from tests.conftest import TEST_MAIL_DOMAIN
from tests.factories import CLIENT_NUMBER, message_params, post_signed
from tests.helpers import BurstWorker, run_worker
from tests.smtp_server import LocalSmtp
from workers.handoff import send_handoff

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ARRIVED = {"municipality": "juva", "moved_to_finland": True}
# A Ukrainian nurse in Kangasniemi who arrived last year, over SMS, in Ukrainian.
COOK_UK = "Я працювала кухарем у Києві два роки, мене звати Олена."


def ukrainian_interview() -> list[str]:
    last_year = str(utcnow().year - 1)
    return [
        "Привіт", "4",
        "4", "41", "1", "3/2025", "4", "медсестра", "так", "3",
        COOK_UK, "15", "догляд за літніми людьми", "A1", "1", "B1",
        "українська", "російська", "1", "2", "кухар", "2", "1, 2", "ні", "1",
        "так", "ні", "так", last_year, "5", "3", "ні",
    ]  # fmt: skip


def handoffs_of(app: Flask) -> list[Handoff]:
    with get_db(app).session() as session:
        return list(session.scalars(select(Handoff).order_by(Handoff.id)))


def parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return plain.get_content(), html.get_content()


def sms(client, bodies: list[str]) -> None:  # noqa: ANN001 - Flask's test client
    for body in bodies:
        post_signed(client, "/twilio/messages", message_params(Body=body))


@SQLITE
def test_a_ukrainian_interview_over_sms_sends_one_finnish_email_to_the_right_team(
    mail_app, client, smtp, twilio, argos_files
):
    from translations.argos import install_package, preload

    for name in ("uk_en", "en_fi"):
        install_package(argos_files[name], mail_app.config["POLKU"].packages_dir)
    preload()

    sms(client, ukrainian_interview())
    run_worker(mail_app, timeout=120)

    [handoff] = handoffs_of(mail_app)
    assert (handoff.status, handoff.reason, handoff.attempts) == (SENT, "finished", 1)
    # Arrived last year: the integration team, wherever in the area she lives.
    assert handoff.team == "integration"
    [message] = smtp.messages
    assert smtp.recipients() == [[f"kotoutuminen@{TEST_MAIL_DOMAIN}"]]
    assert handoff.reference in message["Subject"]
    assert message["Subject"].startswith("Polku: haastattelu valmis")
    assert message["Message-ID"] == f"<polku-{handoff.reference.lower()}@polku.test>"

    plain, html = parts(message)
    for body in (plain, html):
        assert "Kangasniemi" in body
        assert "ukraina" in body  # the client's language, in Finnish
        assert "Asiakkaalle luvattu yhteydenotto viimeistään" in body
        # The client's own words (Cyrillic survives the encoding) beside Finnish.
        assert "кухарем" in body and "kokki" in body
        # The name she gave is replaced; the real one is only in Polku.
        assert "Олена" not in body
        assert "<PERSON_1>" in body or "&lt;PERSON_1&gt;" in body
        assert "Kotoutumispalvelut (maahanmuuttajapalvelut)" in body  # suggested
        assert "Ulkomainen tutkinto" in body  # a flag from the rules
        assert "ESCO-luokitus vahvistamatta" in body  # no ESCO index here
    raw = message.as_bytes()
    assert CLIENT_NUMBER.encode() not in raw and CLIENT_NUMBER[1:].encode() not in raw
    assert CLIENT_NUMBER not in plain and CLIENT_NUMBER not in html
    # The client heard by when to expect contact, in Ukrainian.
    assert "робочих днів" in twilio.bodies_to(CLIENT_NUMBER)[-1]
    with get_db(mail_app).session() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "handoff")
        )
        assert handoff.reference in entry.one().reason


@SQLITE
def test_asking_for_a_person_in_arabic_sends_what_is_known(mail_app, client, smtp):
    words = "عملت طباخا في مطعم «الياسمين» لمدة عشر سنوات"
    sms(client, ["مرحبا", "6", "3", "29", "1", "5/2025", "1", words, "انسان"])
    run_worker(mail_app, timeout=60)

    [handoff] = handoffs_of(mail_app)
    assert (handoff.reason, handoff.team, handoff.status) == (
        "person_requested",
        "juva",
        SENT,
    )
    [message] = smtp.messages
    assert smtp.recipients() == [[f"tyollisyys.juva@{TEST_MAIL_DOMAIN}"]]
    assert "haastattelu jäi kesken" in message["Subject"]
    plain, html = parts(message)
    assert "«الياسمين»" in plain  # Arabic quotes, intact through the encoding
    assert "«الياسمين»" in html and 'dir="auto"' in html
    assert "Juva" in plain and "arabia" in plain


def test_a_retried_job_sends_no_second_email(mail_app, client, smtp):
    sms(client, ["Hei", "1", "Juva", "ihminen"])
    run_worker(mail_app)
    [handoff] = handoffs_of(mail_app)

    # RQ retries a job, the sweep queues it again, an operator retries it.
    with mail_app.app_context():
        assert send_handoff(handoff.id) is False
        assert send_handoff(handoff.id) is False
    sms(client, ["ihminen"])  # asking again after the handoff
    run_worker(mail_app)

    assert len(smtp.messages) == 1
    assert [h.attempts for h in handoffs_of(mail_app)] == [1]


def test_an_smtp_outage_is_retried_until_the_server_is_back(mail_app, client, smtp):
    smtp.stop()
    sms(client, ["Hei", "1", "Juva", "ihminen"])
    queue = get_queue(mail_app)
    # One pass: the reply goes out, the e-mail fails and waits for its retry.
    BurstWorker([queue], connection=queue.connection).work(
        burst=True, logging_level="WARNING"
    )
    [handoff] = handoffs_of(mail_app)
    assert (handoff.status, handoff.attempts) == (PENDING, 1)
    assert handoff.last_error == "SMTP: ConnectionRefusedError"

    smtp.start()
    run_worker(mail_app, timeout=30)

    [handoff] = handoffs_of(mail_app)
    assert (handoff.status, handoff.attempts, handoff.last_error) == (SENT, 2, None)
    assert len(smtp.messages) == 1


@SQLITE
def test_a_long_outage_fails_visibly_and_the_operator_can_retry(mail_app, client, smtp):
    smtp.refuse = True  # the server is up but answers "try again later"
    sms(client, ["Hei", "1", "Juva", "ihminen"])
    run_worker(mail_app, timeout=30)

    [handoff] = handoffs_of(mail_app)
    assert (handoff.status, handoff.attempts) == (FAILED, 3)
    assert handoff.last_error == "SMTP: SMTPDataError"
    runner = mail_app.test_cli_runner()
    listing = runner.invoke(args=["handoffs", "list", "--status", "failed"])
    assert handoff.reference in listing.output and "SMTPDataError" in listing.output

    smtp.refuse = False
    result = runner.invoke(args=["handoffs", "retry", str(handoff.id)])
    assert result.exit_code == 0, result.output
    run_worker(mail_app, timeout=30)

    assert [h.status for h in handoffs_of(mail_app)] == [SENT]
    assert len(smtp.messages) == 1
    assert "1 sent" in runner.invoke(args=["handoffs"]).output


@SQLITE
def test_the_sweep_sends_a_handoff_that_redis_lost(mail_app, client, smtp):
    from workers.maintenance import requeue_pending

    sms(client, ["Hei", "1", "Juva", "ihminen"])
    run_worker(mail_app)
    smtp.reset()
    with get_db(mail_app).transaction() as session:
        handoff = session.scalars(select(Handoff)).one()
        handoff.status, handoff.sent_at = PENDING, None
    get_queue(mail_app).connection.flushdb()  # Redis forgot the job

    assert requeue_pending(grace_seconds=0) == 1
    run_worker(mail_app)

    assert len(smtp.messages) == 1


@SQLITE
def test_without_smtp_the_email_goes_to_the_outbox(app, client):
    sms(client, ["Hei", "1", "Puumala", "ihminen"])
    run_worker(app)

    [handoff] = handoffs_of(app)
    assert handoff.status == SENT and handoff.team == "mikkeli"
    outbox = app.config["POLKU"].outbox
    assert [p.name for p in outbox.iterdir()] == [f"{handoff.reference}.eml"]
    assert b"Puumala" in (outbox / f"{handoff.reference}.eml").read_bytes()


@pytest.mark.parametrize(
    ("slots", "team"),
    [
        ({"municipality": "juva"}, "juva"),
        ({"municipality": "puumala"}, "mikkeli"),
        ({"municipality": "mantyharju"}, "mantyharju"),
        ({"municipality": "other"}, "mikkeli"),
        ({}, "mikkeli"),
        ({**ARRIVED, "arrival_year": 2026}, "integration"),
        ({**ARRIVED, "arrival_year": 2015}, "juva"),
    ],
)  # fmt: skip
def test_routing_by_municipality_and_arrival(slots, team):
    teams = load_flows().teams

    assert teams.route(slots, dt.date(2026, 12, 4)).id == team


@pytest.mark.parametrize(
    ("now", "deadline"),
    [
        (dt.datetime(2026, 12, 4, 10, tzinfo=dt.UTC), dt.date(2026, 12, 8)),  # Fri
        (dt.datetime(2026, 12, 4, 15, tzinfo=dt.UTC), dt.date(2026, 12, 9)),  # after 16
        (dt.datetime(2026, 12, 5, 10, tzinfo=dt.UTC), dt.date(2026, 12, 9)),  # Sat
        (dt.datetime(2026, 12, 22, 10, tzinfo=dt.UTC), dt.date(2026, 12, 28)),  # Xmas
    ],
)
def test_the_promise_counts_working_days(now, deadline):
    assert load_flows().teams.reply.deadline(now) == deadline


def test_smtp_settings_say_what_to_fix(tmp_path):
    def settings(**values: str):  # noqa: ANN202
        return load_settings({**values}, instance_path=tmp_path)

    with pytest.raises(ConfigError, match="smtp\\+starttls://"):
        settings(SMTP_URL="mail.example.fi:587")
    with pytest.raises(ConfigError, match="clear text"):
        settings(SMTP_URL="smtp://mail.example.fi:25", MAIL_FROM="p@x.fi")
    with pytest.raises(ConfigError, match="MAIL_FROM"):
        settings(SMTP_URL="smtps://mail.example.fi")
    with pytest.raises(ConfigError, match="together"):
        settings(SMTP_URL="smtps://mail.example.fi", MAIL_FROM="p@x.fi", SMTP_USER="u")
    ok = settings(
        SMTP_URL="smtp+starttls://mail.example.fi", MAIL_FROM="p@x.fi", SMTP_USER="u",
        SMTP_PASSWORD="secret",
    )  # fmt: skip
    assert ok.smtp_url.startswith("smtp+starttls://")


def test_placeholder_addresses_are_refused_with_smtp(tmp_path, smtp):
    from bot import create_app

    with pytest.raises(ConfigError, match="placeholder e-mail address"):
        create_app(
            {
                "environ": {},
                "instance_path": tmp_path,
                "smtp_url": smtp.url,
                "mail_from": "Polku <polku@polku.test>",
            }
        )


def test_a_mail_server_that_is_down_is_a_clear_error_not_a_crash(tmp_path):
    from bot.mail import Mailer, MailError, parse_smtp_url

    closed = LocalSmtp()  # never started: nothing listens on its port
    mailer = Mailer(parse_smtp_url(closed.url), tmp_path)
    message = EmailMessage()
    message["Subject"], message["To"], message["From"] = "x", "a@b.test", "c@d.test"
    message.set_content("x")

    with pytest.raises(MailError, match="ConnectionRefusedError"):
        mailer.send(message, "x")
