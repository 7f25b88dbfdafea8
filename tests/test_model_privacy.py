"""No personal data reaches the language model: the whole labelled set of
tests/data/pii/ goes through real conversations, and the local model server
is searched for every labelled value afterwards.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from bot.anonymiser import analyzer
from tests.helpers import ROOT, run_worker
from tests.openai_server import template_of
from tests.test_assistant import draft, reading, register
from tests.test_multilingual import chat
from translations.detection import preload

LABELLED = ROOT / "tests" / "data" / "pii" / "labelled.jsonl"
# Messages a conversation: enough to reach free-text steps, questions and the end.
PER_CONVERSATION = 20


# What reaches the model does not depend on the database: one is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_labelled_personal_data_reaches_the_model(llm_app, fake_openai):
    def answer(body: dict[str, Any]) -> str | None:
        template = template_of(body)
        if template == "read_answer_1":
            return reading(body)
        if template == "service_question_1":
            return json.dumps({"topic": "other", "answer": None, "cites": []})
        if template == "draft_summary_1":
            return draft()
        return None

    fake_openai.answer_with(answer)
    rows = [json.loads(line) for line in LABELLED.read_text("utf-8").splitlines()]
    for start in range(0, len(rows), PER_CONVERSATION):
        chunk = [row["text"] for row in rows[start : start + PER_CONVERSATION]]
        # Every third message as a question about services.
        bodies = [
            body if n % 3 or body.rstrip().endswith("?") else f"{body} ?"
            for n, body in enumerate(chunk, 1)
        ]
        # A new web chat session is a new client and conversation.
        chat(llm_app.test_client(), ["Hei", "1", *bodies, "HUMAN"])
    # Loaded before the work horses fork, as `flask worker` does.
    analyzer()
    preload()
    run_worker(llm_app, timeout=300)

    sent = fake_openai.texts()
    squeezed = " ".join(sent.split())
    leaked = [
        (row["id"], entity["type"])
        for row in rows
        for entity in row["entities"]
        if entity["text"] in sent or " ".join(entity["text"].split()) in squeezed
    ]
    assert leaked == []
    # The model was really asked, for every purpose, or the test proves nothing.
    purposes = Counter(call.purpose for call in register(llm_app))
    assert purposes["slot_extraction"] >= 50
    assert purposes["service_question"] >= 20
    assert purposes["summary"] >= len(range(0, len(rows), PER_CONVERSATION))
