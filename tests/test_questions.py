"""Questions between answers: local services cited from flows/services/, and
benefits, legal matters and permits left to a counsellor, with or without a model.

Real web chat and RQ workers; the model is the local server of
tests/openai_server.py.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from bot.db import get_db
from bot.models import Conversation
from bot.questions import retrieve
from flows import load_flows
from tests.helpers import run_worker
from tests.openai_server import template_of
from tests.test_multilingual import TO_RECENT_JOBS, chat, web_replies
from translations import text

SERVICES = load_flows().rules.services


def questions(app) -> list[dict[str, Any]]:  # noqa: ANN001
    with get_db(app).session() as session:
        conversation = session.scalars(select(Conversation)).one()
        return conversation.state.get("questions", [])


def test_services_are_found_by_their_words_in_finnish_and_english():
    found = retrieve(SERVICES, ("Where can I study Finnish?", "en"))
    assert {s.id for s in found[:2]} == {"integration_training", "language_courses"}
    found = retrieve(SERVICES, ("Mistä saan apua oman yrityksen perustamiseen?", "fi"))
    assert found[0].id == "new_business"
    assert retrieve(SERVICES, ("Mitä kuuluu?", "fi")) == []


def test_without_a_model_the_matching_services_are_listed(app, client):
    chat(client, ["Hei", "1", "1", "Missä voin opiskella suomen kieltä?"])
    run_worker(app)

    reply, again = web_replies(client)[-2:]
    assert reply.startswith(text("questions.services", "fi"))
    assert (
        "- Suomen kielen kurssit (esim. kansalaisopisto): https://www.mikkeli.fi"
        in reply
    )
    # The interview goes on where it was: the question did not answer it.
    assert again == text("interview.age", "fi")
    assert questions(app)[0]["topic"] == "local_service"
    assert "language_courses" in questions(app)[0]["cited"]


def test_a_question_about_benefits_is_left_to_a_counsellor(
    llm_app, client, fake_openai
):
    chat(client, ["Hei", "1", "1", "Milloin saan työttömyyskorvausta?"])
    run_worker(llm_app)

    reply = web_replies(client)[-2]
    assert reply == text("questions.counsellor", "fi", word="IHMINEN")
    # Never sent to the model, even though one is configured.
    assert fake_openai.requests == []
    assert questions(llm_app)[0]["topic"] == "benefits"


def test_a_number_with_a_question_mark_is_still_an_answer(app, client):
    chat(client, ["Hei", "1", "1", "41?"])
    run_worker(app)

    assert web_replies(client)[-1].startswith(text("interview.situation", "fi"))


def test_the_model_answers_from_the_entries_it_cites(llm_app, client, fake_openai):
    def answer(body: dict[str, Any]) -> str | None:
        if template_of(body) != "service_question_1":
            return None
        return json.dumps(
            {
                "topic": "local_service",
                "answer": "Ohjaamo auttaa alle 30-vuotiaita työhön ja koulutukseen.",
                "cites": ["ohjaamo"],
            }
        )

    fake_openai.answer_with(answer)
    chat(client, ["Hei", "1", *TO_RECENT_JOBS[:2], "Mikä on Ohjaamo?"])
    run_worker(llm_app)

    reply = web_replies(client)[-2]
    assert reply.startswith("Ohjaamo auttaa alle 30-vuotiaita työhön ja koulutukseen.")
    assert f"\n- {SERVICES['ohjaamo'].name['fi']}" in reply
    request = fake_openai.requests[-1]["body"]
    instructions = request["messages"][0]["content"]
    assert "[ohjaamo]" in instructions
    enum = request["response_format"]["json_schema"]["schema"]["properties"]["cites"]
    assert "ohjaamo" in enum["items"]["enum"]
    assert questions(llm_app)[0] == {"topic": "local_service", "cited": ["ohjaamo"]}


def test_an_answer_with_a_made_up_phone_number_is_not_sent(
    llm_app, client, fake_openai
):
    def answer(body: dict[str, Any]) -> str | None:
        if template_of(body) != "service_question_1":
            return None
        return json.dumps(
            {
                "topic": "local_service",
                "answer": "Soita Ohjaamoon numeroon 0401234567.",
                "cites": ["ohjaamo"],
            }
        )

    fake_openai.answer_with(answer)
    chat(client, ["Hei", "1", "1", "Mikä on Ohjaamo?"])
    run_worker(llm_app)

    reply = web_replies(client)[-2]
    assert "0401234567" not in reply
    # The entries, as they are written, instead.
    assert reply.startswith(text("questions.services", "fi"))
    assert SERVICES["ohjaamo"].name["fi"] in reply


def test_the_model_may_send_a_question_to_a_counsellor(llm_app, client, fake_openai):
    fake_openai.answer_with(
        lambda body: json.dumps({"topic": "legal", "answer": None, "cites": []})
    )
    chat(client, ["Hei", "1", "1", "Voiko työnantaja tehdä näin minulle?"])
    run_worker(llm_app)

    assert web_replies(client)[-2] == text("questions.counsellor", "fi", word="IHMINEN")
    assert questions(llm_app)[0]["topic"] == "legal"


def test_questions_are_answered_after_the_interview_too(app, client):
    chat(client, ["Hei", "1", "HUMAN", "Missä voin opiskella suomen kieltä?"])
    run_worker(app)

    assert web_replies(client)[-1].startswith(text("questions.services", "fi"))
