"""One reminder to a client who left the interview unfinished, in the daytime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from bot.channels import get_channels
from bot.conversation import get_dialogue
from bot.db import get_db
from bot.models import Client, Conversation, Message
from bot.reminders import remind_idle_clients
from tests.factories import CLIENT_NUMBER, message_params, post_signed
from tests.helpers import run_worker
from workers.maintenance import send_reminders

# 12:00 in Helsinki in December (UTC+2).
NOON = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.fixture
def idle_client(app, client, twilio):
    """A client who chose English, answered one question, then went quiet."""
    for body in ("Hello", "3", "Juva"):
        post_signed(client, "/twilio/messages", message_params(Body=body))
        run_worker(app)
    make_idle(app, hours=72)


def make_idle(app, hours: int) -> None:
    with get_db(app).transaction() as session:
        since = NOON - timedelta(hours=hours)
        session.execute(update(Conversation).values(updated_at=since))


def remind(app, now: datetime = NOON) -> list[int]:
    with app.app_context():
        return remind_idle_clients(
            get_db(app),
            get_dialogue(app),
            get_channels(app),
            after=timedelta(hours=48),
            now=now,
        )


def test_idle_client_is_reminded_once_with_the_current_question(app, idle_client):
    [reminder_id] = remind(app)

    with get_db(app).session() as session:
        body = session.get(Message, reminder_id).body
    assert body.startswith("Hi! Your interview is not finished yet.")
    assert "How old are you?" in body
    make_idle(app, hours=72)
    assert remind(app) == []


def test_no_reminder_at_night(app, idle_client):
    night = datetime(2026, 12, 3, 21, 30, tzinfo=UTC)

    assert remind(app, now=night) == []


def test_no_reminder_before_the_configured_time(app, idle_client):
    make_idle(app, hours=24)

    assert remind(app) == []


def test_no_reminder_after_stop(app, idle_client):
    with get_db(app).transaction() as session:
        session.execute(update(Client).values(opted_out_at=NOON))

    assert remind(app) == []


def test_no_reminder_after_the_interview_ended(app, client, idle_client):
    post_signed(client, "/twilio/messages", message_params(Body="HUMAN"))
    run_worker(app)
    make_idle(app, hours=72)

    assert remind(app) == []


def test_reminder_job_sends_through_twilio(app, idle_client, twilio, monkeypatch):
    monkeypatch.setattr("bot.reminders.utcnow", lambda: NOON)
    sent_before = len(twilio.messages)

    assert send_reminders() == 1
    run_worker(app)

    assert len(twilio.messages) == sent_before + 1
    assert twilio.bodies_to(CLIENT_NUMBER)[-1].startswith("Hi! Your interview")
