"""Retention: each record class is deleted when its period in records.yaml ends."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from bot.db import get_db
from bot.models import AuditEntry, Client, Conversation, Message, ModelCall, utcnow
from bot.records import record_classes
from bot.retention import apply_retention
from tests.factories import message_params, post_signed
from tests.helpers import run_worker
from workers.maintenance import delete_expired


def count(app, model: type) -> int:
    with get_db(app).session() as session:
        return session.scalar(select(func.count()).select_from(model))


def age(app, model: type, column: str, days: int) -> None:
    with get_db(app).transaction() as session:
        then = utcnow() - timedelta(days=days)
        session.execute(update(model).values({column: then}))


def test_messages_go_after_their_period_and_the_rest_stays(app, client):
    post_signed(client, "/twilio/messages", message_params(Body="Hei"))
    run_worker(app)
    days = record_classes()["message"].retention.days

    age(app, Message, "created_at", days - 1)
    assert apply_retention(get_db(app))["message"] == 0
    age(app, Message, "created_at", days + 1)
    assert apply_retention(get_db(app))["message"] == 2

    assert count(app, Message) == 0
    assert count(app, Conversation) == count(app, Client) == 1


def test_interview_answers_go_after_their_period(app, client):
    post_signed(client, "/twilio/messages", message_params(Body="Hei"))
    run_worker(app)
    age(
        app,
        Conversation,
        "updated_at",
        record_classes()["interview_answers"].retention.days + 1,
    )

    delete_expired()

    assert count(app, Conversation) == 0


def test_inactive_client_goes_with_everything_left(app, client):
    post_signed(client, "/twilio/messages", message_params(Body="Hei"))
    run_worker(app)
    age(app, Client, "last_seen_at", record_classes()["client"].retention.days + 1)

    apply_retention(get_db(app))

    assert count(app, Client) == count(app, Message) == count(app, Conversation) == 0


def test_audit_entries_are_kept_for_their_own_period(app):
    with get_db(app).transaction() as session:
        for days in (10, record_classes()["audit_entry"].retention.days + 1):
            session.add(
                AuditEntry(
                    at=utcnow() - timedelta(days=days),
                    actor="system",
                    action="erasure",
                    subject="abc123",
                    record_class="message",
                    reason="test",
                )
            )

    assert apply_retention(get_db(app))["audit_entry"] == 1
    assert count(app, AuditEntry) == 1


def test_the_ai_register_is_kept_for_its_own_period(app):
    with get_db(app).transaction() as session:
        for days in (10, record_classes()["model_call"].retention.days + 1):
            session.add(
                ModelCall(
                    at=utcnow() - timedelta(days=days),
                    purpose="probe",
                    template="probe@1",
                    model="m",
                    outcome="ok",
                )
            )

    assert apply_retention(get_db(app))["model_call"] == 1
    assert count(app, ModelCall) == 1
