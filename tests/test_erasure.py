"""DELETE and MY DATA: erasure leaves no trace, the summary says what is kept."""

from __future__ import annotations

from sqlalchemy import func, select, text

from bot.db import get_db
from bot.models import AuditEntry, Client, Conversation, Message
from bot.queue import get_queue
from tests.factories import CLIENT_NUMBER, message_params, post_signed
from tests.helpers import run_worker

SECRET = "Nimeni on Liisa Virtanen ja asun Juvalla"


def say(app, client, *bodies: str) -> None:
    for body in bodies:
        post_signed(client, "/twilio/messages", message_params(Body=body))
    run_worker(app)


def count(app, model: type) -> int:
    with get_db(app).session() as session:
        return session.scalar(select(func.count()).select_from(model))


def redis_dump(app) -> str:
    connection = get_queue(app).connection
    values = []
    for key in connection.scan_iter():
        kind = connection.type(key)
        if kind == b"string":
            values.append(repr(connection.get(key)))
        elif kind == b"hash":
            values.append(repr(connection.hgetall(key)))
        elif kind == b"list":
            values.append(repr(connection.lrange(key, 0, -1)))
        elif kind == b"zset":
            values.append(repr(connection.zrange(key, 0, -1)))
        elif kind == b"set":
            values.append(repr(connection.smembers(key)))
        values.append(repr(key))

    return "\n".join(values)


def test_delete_asks_for_confirmation_first(app, client, twilio):
    say(app, client, "Hei", "1", SECRET, "POISTA")

    assert twilio.bodies_to(CLIENT_NUMBER)[-1].startswith("Haluatko, että poistan")
    assert count(app, Client) == 1


def test_anything_but_yes_keeps_the_data(app, client, twilio):
    say(app, client, "Hei", "1", "POISTA", "en sittenkään")

    cancelled, question = twilio.bodies_to(CLIENT_NUMBER)[-2:]
    assert cancelled == "Mitään ei poistettu."
    assert question.startswith("Missä kunnassa asut?")
    assert count(app, Message) > 0


def test_confirmed_erasure_leaves_no_trace_in_database_or_redis(app, client, twilio):
    say(app, client, "Hei", "1", "Juva", SECRET, "DELETE", "kyllä")

    assert twilio.bodies_to(CLIENT_NUMBER)[-1].startswith("Viestisi ja vastauksesi")
    assert count(app, Client) == count(app, Message) == count(app, Conversation) == 0
    with get_db(app).engine.connect() as connection:
        tables = ("clients", "conversations", "messages", "audit_entries")
        dump = "\n".join(
            str(row)
            for table in tables
            for row in connection.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608
        )
    stored = dump + redis_dump(app)
    for trace in (CLIENT_NUMBER, CLIENT_NUMBER[1:], "Liisa", "Virtanen", "Juvalla"):
        assert trace not in stored


def test_erasure_is_in_the_audit_log_without_the_data(app, client, twilio):
    say(app, client, "Hei", "3", SECRET, "delete", "yes")

    with get_db(app).session() as session:
        [entry] = session.scalars(select(AuditEntry)).all()
    assert (entry.actor, entry.action) == ("client", "erasure")
    assert len(entry.subject) == 12 and CLIENT_NUMBER not in entry.subject


def test_my_data_summarises_what_is_stored_and_is_audited(app, client, twilio):
    say(app, client, "Hello", "3", "Juva", "27", "MY DATA")

    summary = twilio.bodies_to(CLIENT_NUMBER)[-1]
    stored = count(app, Message) - 1  # the summary itself was written after counting
    assert summary.startswith("Stored about you in this service:")
    assert f"{stored} messages since" in summary and "2 interview answers" in summary
    assert "deleted after 90 days" in summary
    with get_db(app).session() as session:
        [entry] = session.scalars(select(AuditEntry)).all()
    assert entry.action == "data_summary"


def test_client_can_start_again_after_erasure(app, client, twilio):
    say(app, client, "Hei", "1", "POISTA", "kyllä")
    say(app, client, "Hei")

    assert "1 Suomi" in twilio.bodies_to(CLIENT_NUMBER)[-1]
    assert count(app, Client) == 1


def test_delete_and_my_data_are_answered_even_after_stop(app, client, twilio):
    for body in ("Hei", "1", "STOP", "Hei?", "OMAT TIEDOT", "POISTA", "kyllä"):
        say(app, client, body)

    replies = twilio.bodies_to(CLIENT_NUMBER)
    assert replies[-3].startswith("Sinusta on tallennettu")
    assert replies[-2].startswith("Haluatko, että poistan")
    assert replies[-1].startswith("Viestisi ja vastauksesi")
    assert count(app, Client) == 0


def test_delete_on_sms_also_erases_the_same_number_on_whatsapp(app, client, twilio):
    from tests.factories import whatsapp_params

    post_signed(client, "/twilio/messages", whatsapp_params(Body=SECRET))
    run_worker(app)
    assert count(app, Client) == 1

    say(app, client, "Hei", "POISTA", "kyllä")

    assert count(app, Client) == count(app, Message) == count(app, Conversation) == 0
