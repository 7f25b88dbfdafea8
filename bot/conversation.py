"""The dialogue itself: commands first, then first contact, language and welcome.

Called by the worker for each inbound text, inside the transaction that stores
the replies. It returns the texts to send and changes only the client and
conversation rows; it knows nothing about HTTP, Twilio or Redis.
"""

from __future__ import annotations

import difflib
import logging
import unicodedata
from dataclasses import dataclass

from bot.models import Client, Conversation, utcnow
from translations import LANGUAGES, LANGUAGES_BY_CODE, text, words

logger = logging.getLogger(__name__)

# Carriers' and Twilio's standard words, plus Finnish; catalogues add their own.
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "LOPETA"}
)
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "APUA"})
LANGUAGE_WORDS = frozenset({"LANGUAGE", "KIELI"})

NEW, CHOOSING_LANGUAGE, WELCOMED = "new", "language", "welcomed"


@dataclass(frozen=True)
class Commands:
    """The command words of every catalogue, gathered once."""

    stop: frozenset[str]
    start: frozenset[str]
    help: frozenset[str]
    language: frozenset[str]

    @classmethod
    def load(cls) -> Commands:
        return cls(
            stop=STOP_WORDS | words("command.stop"),
            start=START_WORDS | words("command.start"),
            help=HELP_WORDS | words("command.help"),
            language=LANGUAGE_WORDS | words("command.language"),
        )


def keyword(body: str) -> str:
    """Return `body` as a possible command word: trimmed, upper case, no end mark."""
    cleaned = unicodedata.normalize("NFKC", body).strip().strip(".!?,;:؟،")

    return " ".join(cleaned.split()).upper()


def respond(
    client: Client,
    conversation: Conversation,
    body: str,
    *,
    commands: Commands,
    contact: str = "",
    media_count: int = 0,
) -> list[str]:
    """Advance `conversation` by one inbound `body` and return the replies.

    Commands work at every stage. After STOP nothing is returned until START.
    A photo or file without text is not read; the client is asked to write.
    """
    word = keyword(body)
    language = client.language

    if word in commands.stop:
        if not client.opted_out:
            client.opted_out_at = utcnow()
            logger.info("client %s: opted out", client.id)
        return []
    if client.opted_out:
        if word not in commands.start:
            return []
        client.opted_out_at = None
        logger.info("client %s: opted in again", client.id)
        return [text("resumed", language), *_prompt(conversation, language)]

    if word in commands.help:
        return [_help(language)]
    if word in commands.language:
        conversation.stage = CHOOSING_LANGUAGE
        return [_language_menu(language)]

    if conversation.stage == NEW:
        conversation.stage = CHOOSING_LANGUAGE
        return [_first_contact()]
    if media_count and not body.strip():
        return [_media_only(language, conversation)]
    if conversation.stage == CHOOSING_LANGUAGE:
        return _choose_language(client, conversation, body, contact)
    if word in commands.start:
        return _prompt(conversation, language)

    return [text("received", language)]


def _choose_language(
    client: Client, conversation: Conversation, body: str, contact: str
) -> list[str]:
    code = parse_language_choice(body)
    if code is None:
        retry = text("language.not_understood", client.language, count=len(LANGUAGES))
        return [retry + "\n" + _menu_lines()]

    client.language = code
    conversation.stage = WELCOMED
    logger.info("client %s: language %s", client.id, code)

    return [_notice(code, conversation, contact), text("welcome", code)]


def _media_only(language: str | None, conversation: Conversation) -> str:
    if language in LANGUAGES_BY_CODE:
        reply = text("media.not_supported", language)
    else:
        reply = _bilingual("media.not_supported")
    if conversation.stage == CHOOSING_LANGUAGE:
        reply += "\n" + _menu_lines()

    return reply


def _bilingual(key: str, separator: str = "\n\n") -> str:
    """Return text `key` in Finnish and English, for a client with no language yet."""
    return text(key, "fi") + separator + text(key, "en")


def _prompt(conversation: Conversation, language: str | None) -> list[str]:
    """Return what the client was last asked, after a START."""
    if conversation.stage in (NEW, CHOOSING_LANGUAGE):
        conversation.stage = CHOOSING_LANGUAGE
        return [_language_menu(language)]

    return [text("welcome", language)]


def parse_language_choice(body: str) -> str | None:
    """Return the language code `body` chooses: a menu number, a name or a code."""
    answer = unicodedata.normalize("NFKC", body).strip().strip(".)!").casefold()
    if not answer:
        return None
    if len(answer) <= 2 and all(char.isdigit() for char in answer):
        # unicodedata reads Arabic-Indic and Persian digits too (٣, ۳).
        number = int("".join(str(unicodedata.digit(char)) for char in answer))
        if 1 <= number <= len(LANGUAGES):
            return LANGUAGES[number - 1].code
        return None

    names: dict[str, str] = {}
    for language in LANGUAGES:
        names[language.code] = language.code
        for name in (language.english_name, language.native_name):
            for variant in (name, *name.split(" / ")):
                names[variant.casefold()] = language.code
    if answer in names:
        return names[answer]
    close = difflib.get_close_matches(answer, list(names), n=1, cutoff=0.75)

    return names[close[0]] if close else None


def _menu_lines() -> str:
    return "\n".join(
        f"{number} {language.native_name}"
        for number, language in enumerate(LANGUAGES, start=1)
    )


def _first_contact() -> str:
    # The client's language is not known yet: greet in Finnish and English.
    greeting = _bilingual("first_contact.hello", "\n")

    return f"{greeting}\n\n{_language_menu(None)}"


def _language_menu(language: str | None) -> str:
    if language in LANGUAGES_BY_CODE:
        intro = text("language.menu_intro", language)
    else:
        intro = _bilingual("language.menu_intro", " / ")

    return f"{intro}\n{_menu_lines()}"


def _notice(language: str, conversation: Conversation, contact: str = "") -> str:
    """Return the AI and privacy notice; remember that the client has seen it."""
    conversation.state = {**(conversation.state or {}), "notice_language": language}
    where = contact or text("contact.default", language)
    parts = [
        text("notice.ai", language),
        text("notice.data", language),
        text("notice.rights", language, contact=where),
    ]

    return "\n\n".join(parts)


def _help(language: str | None) -> str:
    if language in LANGUAGES_BY_CODE:
        return text("help", language)

    return _bilingual("help")
