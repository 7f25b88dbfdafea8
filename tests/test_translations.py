"""The catalogues: every text in every language, drafts marked, placeholders kept."""

from __future__ import annotations

import re

import pytest

from translations import (
    FALLBACK,
    LANGUAGES,
    MissingTextError,
    catalogue_status,
    load_catalogue,
    text,
)

PLACEHOLDER = re.compile(r"\{(\w+)\}")
ENGLISH = load_catalogue(FALLBACK)


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda language: language.code)
def test_every_language_has_every_text_with_the_same_placeholders(language):
    catalogue = load_catalogue(language.code)

    if not language.partial:
        assert set(catalogue) == set(ENGLISH)
    assert set(catalogue) <= set(ENGLISH)
    for key, entry in catalogue.items():
        expected = set(PLACEHOLDER.findall(ENGLISH[key].text))
        assert set(PLACEHOLDER.findall(entry.text)) == expected, key


@pytest.mark.parametrize("code", ["fi", "en"])
def test_reviewed_languages_have_no_machine_drafts(code):
    assert not [k for k, e in load_catalogue(code).items() if e.machine_drafted]


def test_machine_drafted_texts_are_marked():
    drafted = load_catalogue("so")

    assert drafted and all(entry.machine_drafted for entry in drafted.values())


def test_unknown_language_falls_back_to_english():
    assert text("welcome", "xx") == ENGLISH["welcome"].text


def test_unknown_key_is_an_error_not_a_silent_blank():
    with pytest.raises(MissingTextError, match="no.such.key"):
        text("no.such.key", "fi")


def test_no_word_means_two_commands_in_any_language():
    from bot.conversation import Commands

    commands = Commands.load()
    seen: dict[str, str] = {}
    for name in ("stop", "start", "help", "language", "back", "restart", "human"):
        for word in getattr(commands, name):
            assert seen.setdefault(word, name) == name, f"{word} is {seen[word]}"


def test_yes_and_no_words_never_overlap():
    from translations import words

    assert not words("common.yes_words") & words("common.no_words")


@pytest.mark.parametrize("code", ["fi", "sv", "en", "so"])
def test_latin_languages_stay_in_the_cheap_sms_alphabet(code):
    """One stray dash or quote makes a whole SMS cost twice as much (UCS-2)."""
    from bot.segments import is_gsm7

    costly = [
        key
        for key, entry in load_catalogue(code).items()
        if not key.startswith("web.") and not is_gsm7(entry.text)
    ]

    assert costly == []


def test_status_command_reports_completeness_and_sms_cost(app):
    result = app.test_cli_runner().invoke(args=["translations", "status", "--long"])

    assert result.exit_code == 0
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()}
    english = catalogue_status("en")
    assert lines["en"][1:4] == [str(english.reviewed), "0", "0"]
    assert int(lines["uk"][2]) > 0  # machine drafts are counted as such
    assert "segments" in result.output


def test_a_partial_language_falls_back_to_english_and_is_reported():
    status = catalogue_status("xx")

    assert status.reviewed == status.drafted == 0
    assert "welcome" in status.missing
    assert text("welcome", "xx") == ENGLISH["welcome"].text
