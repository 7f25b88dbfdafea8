"""Language detection: offered on a clear text, never on a short one, always asked."""

from __future__ import annotations

import pytest

from bot.conversation import Dialogue, respond
from bot.models import Client, Conversation
from translations import text
from translations.detection import detect

DIALOGUE = Dialogue.load()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("Привіт, я шукаю роботу в Міккелі", "uk"),
        ("Здравствуйте, я ищу работу поваром", "ru"),
        ("Hei, etsin töitä Mikkelistä", "fi"),
        ("Hej, jag söker jobb som kock", "sv"),
        ("Hello, I am looking for a job", "en"),
        ("مرحبا، أبحث عن عمل في ميكيلي", "ar"),
        ("سلام، من دنبال کار هستم", "fa"),
        ("Salaam, waxaan raadinayaa shaqo", "so"),
        ("Tere, ma otsin tööd Mikkelis", "et"),
    ],
)
def test_clear_messages_are_recognised(message, code):
    found = detect(message)

    assert found is not None and found.code == code


@pytest.mark.parametrize("message", ["ok", "1", "Hei", "B1", "kyllä", "Mikkeli"])
def test_short_messages_are_never_judged(message):
    assert detect(message) is None


def person() -> tuple[Client, Conversation]:
    client = Client(id=1, channel="sms", address="+358401234567", address_hash="x")
    return client, Conversation(id=1, client_id=1, stage="new", state={})


def test_first_contact_offers_the_language_the_client_wrote_in():
    client, conversation = person()

    [reply] = respond(client, conversation, "Привіт, я шукаю роботу", DIALOGUE)

    assert reply.startswith(text("language.detected", "uk", number=4))
    assert "1 Suomi" in reply
    assert client.language is None  # nothing is switched without the client


def test_switch_is_asked_and_made_only_on_yes():
    client, conversation = person()
    for body in ("Hei", "1", "Mikkeli"):
        respond(client, conversation, body, DIALOGUE)

    *_, offer = respond(client, conversation, "Мне 34 года, я ищу работу", DIALOGUE)
    assert offer == text("language.confirm_switch", "ru")
    assert client.language == "fi"

    [question] = respond(client, conversation, "да", DIALOGUE)
    assert client.language == "ru"
    assert question.startswith(text("interview.situation", "ru"))


def test_declined_language_is_not_offered_again():
    client, conversation = person()
    for body in ("Hei", "1", "Mikkeli", "Мне 34 года, я ищу работу", "нет"):
        respond(client, conversation, body, DIALOGUE)

    replies = respond(client, conversation, "Я безработный уже полгода", DIALOGUE)

    assert text("language.confirm_switch", "ru") not in replies
    assert client.language == "fi"


def test_detect_language_command_prints_code_and_confidence(app):
    result = app.test_cli_runner().invoke(
        args=["detect-language"], input="Tere, ma otsin tööd Mikkelis\nok\n"
    )

    first, second = result.output.splitlines()
    assert first.startswith("et\tet 0.")
    assert second.startswith("-\t")


def test_accuracy_on_the_short_messages_set():
    import json
    from pathlib import Path

    path = Path(__file__).parent / "data" / "language" / "short_messages.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    decided = [(row, detect(row["text"])) for row in rows]
    sure = [(row, found) for row, found in decided if found is not None]

    assert len(rows) >= 20 * 9
    assert sum(found.code == row["lang"] for row, found in sure) / len(sure) >= 0.97
    assert len(sure) / len(rows) >= 0.8  # most messages are clear enough to ask
