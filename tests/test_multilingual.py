"""Clients in Ukrainian, Arabic and Finnish, end to end: their texts, a change of
language mid-way, and the counsellor's side in Finnish or marked untranslated.

Real webhooks, web chat, RQ workers and Argos (the suite's tiny uk->en->fi
packages); no package for Arabic or Russian is installed.
"""

from __future__ import annotations

import secrets

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot import crypto
from bot.conversation import get_dialogue
from bot.counsellor import PENDING, answers_for_counsellor
from bot.db import get_db
from bot.models import Conversation
from bot.queue import get_queue
from tests.factories import CLIENT_NUMBER, message_params, post_signed
from tests.helpers import run_worker, wait_for, worker_processes
from translations import text
from translations.translator import NOT_TRANSLATED, ORIGINAL, TRANSLATED

# End to end, the same on either database: the database tests cover PostgreSQL.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# Mikkeli, 41, "other" situation, no completed education: then recent jobs.
TO_RECENT_JOBS = ["1", "41", "6", "5"]
COOK_UK = "Я працювала кухарем у Києві два роки, мене звати Олена."


def chat(client: FlaskClient, bodies: list[str]) -> None:
    for body in bodies:
        client.post("/chat/messages", json={"id": secrets.token_hex(8), "text": body})


def web_replies(client: FlaskClient) -> list[str]:
    messages = client.get("/chat/messages?after=0").get_json()["messages"]
    return [m["text"] for m in messages if m["direction"] == "out"]


def counsellor_answers(app: Flask) -> dict[str, object]:
    with get_db(app).session() as session:
        conversation = session.scalars(select(Conversation)).first()
    state = conversation.state.get("interview") if conversation else None
    flow = get_dialogue(app).flows.interview
    answers = answers_for_counsellor(flow, state or {})

    return {answer.step: answer for answer in answers}


def test_ukrainian_in_the_web_chat_with_a_switch_to_russian(argos_app, client):
    russian = "Я умею готовить еду, убирать помещения и работать на складе."
    chat(client, ["Привіт, я шукаю роботу в Міккелі", "4", *TO_RECENT_JOBS])
    chat(client, [COOK_UK, "2", russian, "да", "HUMAN"])
    run_worker(argos_app, timeout=60)

    replies = web_replies(client)
    assert text("language.detected", "uk", number=4) in replies[0]
    assert text("interview.recent_jobs", "uk") in replies
    assert text("language.confirm_switch", "ru") in replies
    # Asked for a person after the Finnish question: thanks, and by when.
    assert replies[-3].startswith(text("interview.finnish_level", "ru"))
    assert "рабочих дней" in replies[-1]
    answers = counsellor_answers(argos_app)
    jobs = answers["recent_jobs"]
    assert (jobs.status, jobs.language, jobs.own_words) == (TRANSLATED, "uk", COOK_UK)
    assert jobs.text == "Я працювала kokki у Києві два роки, мене звати Олена."
    assert jobs.question == text("interview.recent_jobs", "fi")
    skills = answers["skills"]
    assert (skills.status, skills.language) == (NOT_TRANSLATED, "ru")
    assert skills.text == skills.own_words == russian
    assert answers["age"].text == "41"
    assert answers["education_level"].text == text(
        "interview.education_level.none", "fi"
    )


def test_the_translator_sees_placeholders_never_names(argos_app, client):
    chat(client, ["Привіт, я шукаю роботу в Міккелі", "4", *TO_RECENT_JOBS, COOK_UK])
    run_worker(argos_app, timeout=60)

    # The cache holds what the model wrote from what it was given.
    redis = get_queue(argos_app).connection
    cached = [
        crypto.decrypt(redis.get(key).decode()) for key in redis.keys("polku:mt:*")
    ]
    assert cached and not [value for value in cached if "Олена" in value]
    assert any("<PERSON 1>" in value for value in cached)
    assert "kokki" in counsellor_answers(argos_app)["recent_jobs"].text


def test_arabic_over_sms_reaches_the_counsellor_marked_untranslated(
    argos_app, client, twilio
):
    arabic = "عملت طباخا في كييف لمدة عامين"
    bodies = ["مرحبا، أبحث عن عمل في ميكيلي", "٦", "١", "٤١", "٦", "٥", arabic]
    for body in bodies:
        post_signed(client, "/twilio/messages", message_params(Body=body))
    run_worker(argos_app, timeout=60)

    sent = twilio.bodies_to(CLIENT_NUMBER)
    assert text("language.detected", "ar", number=6) in sent[0]
    assert text("notice.ai", "ar") in "\n".join(sent)
    assert sent[-1] == text("interview.work_years", "ar")
    jobs = counsellor_answers(argos_app)["recent_jobs"]
    assert (jobs.status, jobs.language) == (NOT_TRANSLATED, "ar")
    assert jobs.text == jobs.own_words == arabic


def test_finnish_answers_reach_the_counsellor_as_they_are(argos_app, client):
    finnish = "Olin kokkina Kiovassa kaksi vuotta"
    chat(client, ["Hei", "1", *TO_RECENT_JOBS, finnish])
    run_worker(argos_app, timeout=60)

    assert web_replies(client)[-1] == text("interview.work_years", "fi")
    jobs = counsellor_answers(argos_app)["recent_jobs"]
    assert (jobs.status, jobs.text, jobs.own_words) == (ORIGINAL, finnish, None)


def test_ukrainian_over_sms_is_translated_by_a_worker_process(argos_app, client):
    for body in ["Привіт, я шукаю роботу в Міккелі", "4", *TO_RECENT_JOBS, COOK_UK]:
        post_signed(client, "/twilio/messages", message_params(Body=body))

    def translated() -> bool:
        answers = counsellor_answers(argos_app)
        return "recent_jobs" in answers and answers["recent_jobs"].status != PENDING

    with worker_processes(argos_app, 1):
        wait_for(translated, timeout=90)

    jobs = counsellor_answers(argos_app)["recent_jobs"]
    assert jobs.status == TRANSLATED
    assert "kokki" in jobs.text


def test_a_changed_answer_is_translated_again(argos_app, client):
    chat(client, ["Hei", "3", *TO_RECENT_JOBS, "I was a cook", "back", "A cook"])
    run_worker(argos_app, timeout=60)

    jobs = counsellor_answers(argos_app)["recent_jobs"]
    assert (jobs.status, jobs.text, jobs.own_words) == (TRANSLATED, "A kokki", "A cook")
