"""The interview's jobs and skills in ESCO terms: offered, confirmed by number,
and read by the counsellor with URIs, codes and a confidence.

Real web chat, webhooks, RQ workers and the small ESCO index of
tests/esco_files.py; Argos runs the suite's tiny uk->en package.
"""

from __future__ import annotations

import pytest

from bot.counsellor import render_for_counsellor
from flows.engine import CONFIRMED, NO_MATCH, REJECTED, UNAVAILABLE
from tests import esco_files as files
from tests.factories import CLIENT_NUMBER, message_params, post_signed
from tests.helpers import run_worker
from tests.test_multilingual import (
    TO_RECENT_JOBS,
    chat,
    counsellor_answers,
    web_replies,
)
from translations import text

# End to end, the same on either database: the database tests cover PostgreSQL.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def uris(answer) -> list[str]:
    return [item["uri"] for item in answer.esco["items"]]


def test_finnish_jobs_are_confirmed_and_their_skills_offered(esco_app, client):
    chat(client, ["Hei", "1", *TO_RECENT_JOBS, "olin hitsaajana ja trukkikuskina"])
    run_worker(esco_app)
    offer = web_replies(client)[-1]

    assert offer.startswith(text("esco.confirm_occupations", "fi"))
    assert "\n1 hitsaaja\n2 trukinkuljettaja\n" in offer
    assert offer.endswith("0 " + text("esco.none", "fi"))

    chat(client, ["1 2", "5"])
    run_worker(esco_app)
    suggested = web_replies(client)[-1]
    assert suggested.startswith(text("interview.skills", "fi"))
    assert text("esco.suggest_skills", "fi") in suggested
    assert "1 käyttää haarukkatrukkia\n2 hitsaustekniikat\n" in suggested

    chat(client, ["1 2"])
    run_worker(esco_app)
    assert web_replies(client)[-1].startswith(text("interview.finnish_level", "fi"))
    answers = counsellor_answers(esco_app)
    jobs, skills = answers["recent_jobs"], answers["skills"]
    assert jobs.esco["status"] == skills.esco["status"] == CONFIRMED
    assert uris(jobs) == [files.WELDER, files.FORKLIFT_OPERATOR]
    assert uris(skills) == [files.FORKLIFT, files.WELDING]
    assert jobs.text == "olin hitsaajana ja trukkikuskina"
    assert skills.text == "käyttää haarukkatrukkia; hitsaustekniikat"


def test_the_counsellor_reads_uris_codes_and_confidence(esco_app, client):
    chat(client, ["Hei", "1", *TO_RECENT_JOBS, "hitsaaja", "1", "5", "0"])
    run_worker(esco_app)
    answers = counsellor_answers(esco_app)
    rendered = render_for_counsellor(list(answers.values()))
    [item] = answers["recent_jobs"].esco["items"]

    assert (
        f"ESCO, asiakkaan vahvistama: hitsaaja (7212.3), varmuus "
        f"{item['score']:.2f}, {files.WELDER}"
    ) in rendered
    assert 0.5 < item["score"] <= 1
    # 0 to the suggested skills: the skills question again, for their own words.
    assert web_replies(client)[-1] == text("interview.skills", "fi")
    chat(client, ["hitsaustekniikat", "1"])
    run_worker(esco_app)
    assert uris(counsellor_answers(esco_app)["skills"]) == [files.WELDING]


def test_english_over_sms_none_of_these_then_skills_in_own_words(
    esco_app, client, twilio
):
    bodies = ["Hello", "3", *TO_RECENT_JOBS, "I worked in a restaurant kitchen"]
    bodies += ["0", "3", "customer service and washing dishes", "1"]
    for body in bodies:
        post_signed(client, "/twilio/messages", message_params(Body=body))
    run_worker(esco_app, timeout=60)

    sent = twilio.bodies_to(CLIENT_NUMBER)
    offers = [body for body in sent if text("esco.none", "en") in body]
    assert "cook" in offers[0]
    assert offers[1].startswith(text("esco.confirm_skills", "en"))
    assert sent[-1].startswith(text("interview.finnish_level", "en"))
    answers = counsellor_answers(esco_app)
    assert answers["recent_jobs"].esco == {
        "status": REJECTED,
        "items": [],
        "offered": answers["recent_jobs"].esco["offered"],
    }
    assert answers["skills"].esco["status"] == CONFIRMED
    assert uris(answers["skills"])[0] in (files.CUSTOMER_SERVICE, files.DISHES)


def test_words_at_the_list_are_a_new_answer_and_a_wrong_number_is_asked_again(
    esco_app, client
):
    chat(client, ["Hei", "1", *TO_RECENT_JOBS, "kokkina", "7"])
    run_worker(esco_app)
    assert web_replies(client)[-1].startswith(text("esco.reask", "fi", count=5)[:20])

    chat(client, ["ei vaan lähihoitajana", "1"])
    run_worker(esco_app)
    jobs = counsellor_answers(esco_app)["recent_jobs"]
    assert jobs.text == "ei vaan lähihoitajana"
    assert uris(jobs) == [files.HEALTHCARE_ASSISTANT]


def test_without_esco_the_clients_words_are_kept_and_the_counsellor_told(app, client):
    chat(client, ["Hei", "1", *TO_RECENT_JOBS, "olin hitsaajana"])
    run_worker(app)

    assert web_replies(client)[-1] == text("interview.work_years", "fi")
    jobs = counsellor_answers(app)["recent_jobs"]
    assert (jobs.text, jobs.esco["status"]) == ("olin hitsaajana", UNAVAILABLE)
    assert "ESCO ei ollut käytettävissä" in render_for_counsellor([jobs])


def test_words_that_match_nothing_go_on_without_a_list(esco_app, client):
    chat(client, ["Hei", "1", *TO_RECENT_JOBS, "zzzz qqqq"])
    run_worker(esco_app)

    assert web_replies(client)[-1] == text("interview.work_years", "fi")
    assert counsellor_answers(esco_app)["recent_jobs"].esco["status"] == NO_MATCH


def test_ukrainian_is_matched_through_local_translation(esco_app, argos_app, client):
    chat(client, ["Привіт, я шукаю роботу в Міккелі", "4", *TO_RECENT_JOBS])
    chat(client, ["Я працювала кухарем"])
    run_worker(argos_app, timeout=60)
    offer = web_replies(client)[-1]

    assert offer.startswith(text("esco.confirm_occupations", "uk"))
    # ESCO has no Ukrainian labels in this index: English, not Finnish.
    assert "\n1 cook\n" in offer
