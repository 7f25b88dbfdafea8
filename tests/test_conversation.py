"""The dialogue without I/O: commands, first contact, language choice, welcome."""

from __future__ import annotations

import pytest

from bot.conversation import Commands, keyword, parse_language_choice, respond
from bot.models import Client, Conversation
from translations import LANGUAGES, text

COMMANDS = Commands.load()


@pytest.fixture
def person() -> tuple[Client, Conversation]:
    client = Client(id=1, channel="sms", address="+358401234567", address_hash="x")
    return client, Conversation(id=1, client_id=1, stage="new", state={})


def say(person: tuple[Client, Conversation], body: str, contact: str = "") -> list[str]:
    client, conversation = person
    return respond(client, conversation, body, commands=COMMANDS, contact=contact)


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("1", "fi"),
        ("9", "et"),
        (" 3. ", "en"),
        ("٦", "ar"),
        ("۷", "fa"),
        ("suomi", "fi"),
        ("Svenska", "sv"),
        ("english", "en"),
        ("Englsh", "en"),
        ("українська", "uk"),
        ("Русский", "ru"),
        ("russian", "ru"),
        ("العربية", "ar"),
        ("دری", "fa"),
        ("Persian", "fa"),
        ("somali", "so"),
        ("EESTI", "et"),
        ("0", None),
        ("10", None),
        ("", None),
        ("I want a job", None),
    ],
)
def test_language_choice_accepts_numbers_names_and_misspellings(answer, code):
    assert parse_language_choice(answer) == code


@pytest.mark.parametrize(
    ("body", "word"), [(" stop ", "STOP"), ("Lopeta!", "LOPETA"), ("help?", "HELP")]
)
def test_keyword_ignores_case_spaces_and_end_marks(body, word):
    assert keyword(body) == word


def test_first_message_gets_bilingual_greeting_and_menu(person):
    [reply] = say(person, "Hello")

    assert "tekoäly" in reply and "(AI)" in reply
    for number, language in enumerate(LANGUAGES, start=1):
        assert f"{number} {language.native_name}" in reply
    assert person[1].stage == "language"


def test_unclear_language_answer_is_asked_again(person):
    say(person, "Hello")

    [reply] = say(person, "maybe")

    assert "1 to 9" in reply or "1–9" in reply
    assert person[0].language is None


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda language: language.code)
def test_every_language_gets_notice_and_welcome(person, language):
    say(person, "Hei")

    notice, welcome = say(person, language.native_name)

    assert person[0].language == language.code
    assert notice.startswith(text("notice.ai", language.code))
    assert text("notice.data", language.code) in notice
    assert welcome == text("welcome", language.code)


def test_notice_names_the_configured_contact(person):
    say(person, "Hei")

    notice, _ = say(person, "3", contact="Mikkeli service desk, tel. 015 000")

    assert "Mikkeli service desk, tel. 015 000" in notice


@pytest.mark.parametrize(
    "word",
    ["STOP", "stopall", "Unsubscribe", "CANCEL", "end", "quit", "LOPETA", "СТОП"],
)
def test_stop_words_opt_out_silently(person, word):
    assert say(person, word) == []
    assert person[0].opted_out
    assert say(person, "Hello?") == []


def test_start_resumes_after_stop(person):
    say(person, "Hei")
    say(person, "3")
    say(person, "STOP")

    resumed, prompt = say(person, "start")

    assert not person[0].opted_out
    assert "Welcome back" in resumed
    assert prompt.startswith("Welcome!")


def test_help_answers_in_the_clients_language(person):
    say(person, "Hei")
    say(person, "1")

    [reply] = say(person, "apua")

    assert reply.startswith("Komennot:")


def test_help_before_a_language_is_chosen_is_bilingual(person):
    [reply] = say(person, "HELP")

    assert "Komennot:" in reply and "Commands:" in reply


def test_language_word_reopens_the_menu_at_any_step(person):
    say(person, "Hei")
    say(person, "4")

    [menu] = say(person, "мова")
    say(person, "2")

    assert "1 Suomi" in menu
    assert person[0].language == "sv"


def test_photo_without_text_asks_to_write_and_repeats_the_menu(person):
    say(person, "Hei")
    client, conversation = person

    [reply] = respond(client, conversation, "", commands=COMMANDS, media_count=1)

    assert "only read text" in reply and "1 Suomi" in reply
    assert conversation.stage == "language"
