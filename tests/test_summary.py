"""The counsellor's summary in deterministic mode: answers sorted, rules' reasons.

A whole interview over the web chat (a counsellors' scenario), then the summary
built from the stored conversation, as the handoff and `chat` will show it.
"""

from __future__ import annotations

import pytest

from bot.conversation import get_dialogue
from bot.summary import render_summary, summarise
from flows import load_flows
from flows.model import FlowError
from tests.helpers import run_worker
from tests.test_interview import conversation_of, scenario_answers
from tests.test_multilingual import chat


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_finished_interview_is_summarised_from_the_answers_alone(app, client):
    chat(client, ["Hello", "3", *scenario_answers("recently_arrived_ukrainian")])
    run_worker(app, timeout=60)
    flows = get_dialogue(app).flows
    summary = summarise(flows, conversation_of(app).state)
    text = render_summary(summary)

    assert text.startswith("Tiivistelmä asiakkaan vastauksista")
    situation = summary.sections["situation"]
    assert situation[:2] == ["Kunta: Kangasniemi", "Ikä: 41"]
    assert "Suomen kieli: Muutama sana (A1)" in summary.sections["strengths"]
    assert "- Aiemmat työt: nurse, care assistant (ei käännetty" in text
    assert any("Ulkomainen tutkinto" in flag for flag in summary.flags)
    assert any(
        step.startswith("Kotoutumispalvelut (maahanmuuttajapalvelut): ")
        for step in summary.next_steps
    )
    assert "Huomioitavaa\n- " in text and "Ehdotetut seuraavat askeleet" in text
    assert not summary.person_requested and summary.open_questions == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_request_for_a_person_is_said_first(app, client):
    chat(client, ["Hei", "1", "Puumala", "31", "ihminen"])
    run_worker(app)
    summary = summarise(get_dialogue(app).flows, conversation_of(app).state)

    assert summary.person_requested
    assert render_summary(summary).splitlines()[2] == (
        "Asiakas pyysi yhteyttä ihmiseen."
    )
    assert summary.sections["situation"] == ["Kunta: Puumala", "Ikä: 31"]
    assert summary.sections["goals"] == []


def test_the_summary_sections_are_checked_like_the_flows(tmp_path):
    import shutil

    from flows import FLOWS_DIR

    copy = tmp_path / "flows"
    shutil.copytree(FLOWS_DIR, copy, ignore=shutil.ignore_patterns("*.py"))
    (copy / "summary.yaml").write_text("sections:\n  goals: [age, dream_job]\n")

    with pytest.raises(FlowError, match="goals lists unknown step 'dream_job'"):
        load_flows(copy)
