"""The whole interview end to end, in the web chat and over SMS, as a client would."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from flask import Flask
from sqlalchemy import select, update

from bot import create_app
from bot.db import get_db
from bot.models import Conversation, utcnow
from bot.queue import get_queue
from flows import FLOWS_DIR
from tests.factories import CLIENT_NUMBER, message_params, post_signed
from tests.helpers import run_worker
from translations import text


def scenario_answers(name: str) -> list[str]:
    path = FLOWS_DIR / "scenarios" / f"{name}.yaml"
    year = utcnow().year
    answers = yaml.safe_load(path.read_text(encoding="utf-8"))["answers"]

    return [str(a).format(this_year=year, last_year=year - 1) for a in answers]


def conversation_of(app: Flask) -> Conversation:
    with get_db(app).session() as session:
        return session.scalars(select(Conversation)).one()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_whole_interview_in_finnish_in_the_web_chat(app, client):
    answers = scenario_answers("young_no_vocational_degree")
    # A wrong answer and a step back on the way.
    bodies = ["Hei", "1", answers[0], "ei tiedä", answers[1], "takaisin", answers[1]]
    for number, body in enumerate([*bodies, *answers[2:]]):
        client.post("/chat/messages", json={"id": f"chat-{number:04d}", "text": body})
    run_worker(app, timeout=60)

    data = client.get("/chat/messages?after=0").get_json()["messages"]
    replies = [m["text"] for m in data if m["direction"] == "out"]
    assert any(reply.startswith("Vastaa numerolla 15-99.") for reply in replies)
    assert replies[-2] == text("flow.finished", "fi")
    assert replies[-1].startswith("Työllisyyspalvelujen asiantuntija ottaa sinuun")
    outcome = conversation_of(app).state["outcome"]
    services = {s for item in outcome["suggestions"] for s in item["services"]}
    assert {"ohjaamo", "typ"} <= services


def test_whole_interview_in_english_over_sms_after_a_weeks_pause(app, client, twilio):
    answers = scenario_answers("recently_arrived_ukrainian")
    for body in ["Hello", "3", *answers[:12]]:
        post_signed(client, "/twilio/messages", message_params(Body=body))
    run_worker(app, timeout=60)
    with get_db(app).transaction() as session:
        a_week_ago = utcnow() - timedelta(days=7)
        session.execute(update(Conversation).values(updated_at=a_week_ago))

    # A week later, and after a restart of everything: the state is in the database.
    later = create_app({"settings": app.config["POLKU"]})
    for body in answers[12:]:
        post_signed(later.test_client(), "/twilio/messages", message_params(Body=body))
    run_worker(later, timeout=60)
    get_queue(later).connection.close()

    bodies = twilio.bodies_to(CLIENT_NUMBER)
    assert bodies[-2] == text("flow.finished", "en")
    slots = conversation_of(app).state["interview"]["slots"]
    assert slots["municipality"] == "kangasniemi"
    assert slots["residence_status"] == "temporary_protection"


def test_asking_for_a_person_over_sms_ends_with_what_is_known(app, client, twilio):
    for body in ["Hei", "1", "Puumala", "31", "ihminen"]:
        post_signed(client, "/twilio/messages", message_params(Body=body))
    run_worker(app)

    assert twilio.bodies_to(CLIENT_NUMBER)[-2] == text("flow.human", "fi")
    conversation = conversation_of(app)
    assert conversation.stage == "done"
    assert conversation.state["outcome"]["reason"] == "client_asked_for_a_person"
    assert conversation.state["interview"]["slots"] == {
        "municipality": "puumala",
        "age": 31,
    }


def test_every_answer_is_written_to_the_database(app, client):
    for number, body in enumerate(["Hei", "3", "Juva", "old enough", "31"]):
        client.post("/chat/messages", json={"id": f"chat-{number:04d}", "text": body})
        run_worker(app)
        # A fresh read from the database after every turn, not the session's copy.
        slots = conversation_of(app).state.get("interview", {}).get("slots", {})
        tries = conversation_of(app).state.get("interview", {}).get("tries")
        if body == "old enough":
            assert (slots, tries) == ({"municipality": "juva"}, 1)

    assert conversation_of(app).state["interview"]["slots"] == {
        "municipality": "juva",
        "age": 31,
    }
