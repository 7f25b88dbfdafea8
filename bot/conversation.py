"""The dialogue: commands first, then first contact, language, and the interview.

Called by the worker for each inbound text, inside the transaction that stores
the replies. It returns the texts to send and changes only the client and
conversation rows; it knows nothing about HTTP, Twilio or Redis. The questions
and their order come from the flow in `flows/`.
"""

from __future__ import annotations

import copy
import difflib
import logging
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton

from bot.errors import ConfigError
from bot.gate import AnonymisedText
from bot.models import Client, Conversation, utcnow
from bot.records import record_classes
from flows import FLOWS_DIR, FlowSet, engine, load_flows
from flows.answers import looks_like_question
from flows.model import FREE_TEXT_TYPES, FlowError
from translations import LANGUAGES, LANGUAGES_BY_CODE, fold, text, words
from translations.detection import Detection, detect

if TYPE_CHECKING:
    from flask import Flask

    from bot.limits import Verdict
    from bot.questions import ServiceDesk

logger = logging.getLogger(__name__)

HELSINKI = ZoneInfo("Europe/Helsinki")

# Carriers' and Twilio's standard words, plus Finnish; catalogues add their own.
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "LOPETA"}
)
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "APUA"})
LANGUAGE_WORDS = frozenset({"LANGUAGE", "KIELI"})
BACK_WORDS = frozenset({"BACK", "TAKAISIN"})
DELETE_WORDS = frozenset({"DELETE", "POISTA"})
MY_DATA_WORDS = frozenset({"MY DATA", "OMAT TIEDOT"})
RESTART_WORDS = frozenset({"RESTART", "ALUSTA"})
HUMAN_WORDS = frozenset({"HUMAN", "IHMINEN"})
COURSE_WORDS = frozenset({"COURSE", "KURSSI"})
PAUSE_WORDS = frozenset({"PAUSE", "TAUKO"})

NEW, CHOOSING_LANGUAGE, INTERVIEW, DONE = "new", "language", "interview", "done"
# A participant of the civic-orientation course (bot/course.py).
COURSE = "course"
# What a turn asks the caller to do besides replying (it has the database).
ERASE, DATA_SUMMARY, PRIVACY_REPLY = "erase", "data_summary", "privacy_reply"
# The client answered in their own words: translate it for the counsellor.
TRANSLATE = "translate"
# The interview ended or the client asked for a person: open a handoff.
HANDOFF = "handoff"


class CourseHook(Protocol):
    """Answers a message of the civic-orientation course; None: not the course's."""

    def __call__(
        self,
        client: Client,
        conversation: Conversation,
        word: str,
        body: str,
        dialogue: Dialogue,
    ) -> list[str] | None: ...


@dataclass(frozen=True)
class Stored:
    """What is stored about a client, for the MY DATA summary."""

    messages: int
    since: datetime | None


@dataclass(frozen=True)
class Commands:
    """The command words of every catalogue, gathered once."""

    stop: frozenset[str]
    start: frozenset[str]
    help: frozenset[str]
    language: frozenset[str]
    back: frozenset[str]
    restart: frozenset[str]
    human: frozenset[str]
    delete: frozenset[str]
    my_data: frozenset[str]
    yes: frozenset[str]
    no: frozenset[str]
    course: frozenset[str] = frozenset()
    pause: frozenset[str] = frozenset()

    @classmethod
    def load(cls) -> Commands:
        return cls(
            stop=STOP_WORDS | words("command.stop"),
            start=START_WORDS | words("command.start"),
            help=HELP_WORDS | words("command.help"),
            language=LANGUAGE_WORDS | words("command.language"),
            back=BACK_WORDS | words("command.back"),
            restart=RESTART_WORDS | words("command.restart"),
            human=HUMAN_WORDS | words("command.human"),
            delete=DELETE_WORDS | words("command.delete"),
            my_data=MY_DATA_WORDS | words("command.my_data"),
            yes=words("common.yes_words"),
            no=words("common.no_words"),
            course=COURSE_WORDS | words("command.course"),
            pause=PAUSE_WORDS | words("command.pause"),
        )


@dataclass(frozen=True)
class Dialogue:
    """What every turn needs and no turn changes: commands, flows and rules."""

    commands: Commands
    flows: FlowSet
    contact: str = ""
    privacy_url: str = "/privacy"
    # ESCO for one conversation's occupation and skills steps; None: words only.
    vocabulary: Callable[[Conversation], engine.Vocabulary | None] | None = None
    # The language model for one conversation; None or None returned:
    # deterministic mode.
    assistant: Callable[[Conversation], engine.Assistant | None] | None = None
    # Answers a conversation's questions about services; None: from the
    # entries alone.
    desk: Callable[[Conversation], ServiceDesk] | None = None
    # Counts a conversation the client starts (first contact, RESTART) against
    # CONVERSATIONS_PER_DAY; None: no limit.
    opening: Callable[[Client], Verdict] | None = None

    @classmethod
    def load(
        cls,
        contact: str = "",
        directory: Path | None = None,
        privacy_url: str = "/privacy",
        teams_file: Path | None = None,
    ) -> Dialogue:
        """Read the catalogues' commands and the flows; raise `FlowError` if broken."""
        flows = load_flows(directory or FLOWS_DIR, teams_file)
        return cls(Commands.load(), flows, contact, privacy_url)


def init_app(app: Flask) -> None:
    """Load the dialogue once; a broken flow file stops the app from starting."""
    try:
        settings = app.config["POLKU"]
        base = (settings.public_base_url or "").rstrip("/")
        dialogue = Dialogue.load(
            settings.service_contact,
            settings.flows_dir,
            f"{base}/privacy",
            settings.teams_file,
        )
    except FlowError as exc:
        raise ConfigError(str(exc)) from exc
    teams = dialogue.flows.teams
    unset = [team.id for team in teams.teams.values() if team.unset] if teams else []
    if settings.smtp_url and unset:
        # Mail to a placeholder address bounces: the case would be lost.
        raise ConfigError(
            f"TEAMS: team {unset[0]!r} still has a placeholder e-mail address; "
            "write the real addresses in flows/teams.yaml or in the file TEAMS_FILE "
            "names before setting SMTP_URL"
        )
    app.extensions["polku.dialogue"] = replace(
        dialogue,
        vocabulary=partial(_vocabulary, app),
        assistant=partial(_assistant, app),
        desk=partial(_desk, app, dialogue.flows),
        opening=partial(_opening, app),
    )


def _vocabulary(app: Flask, conversation: Conversation) -> engine.Vocabulary:
    from bot.vocabulary import EscoVocabulary
    from esco import get_matcher
    from translations.translator import get_translator

    return EscoVocabulary(
        partial(get_matcher, app), partial(get_translator, app), conversation
    )


def _assistant(app: Flask, conversation: Conversation) -> engine.Assistant | None:
    from bot.llm import get_language_model

    model = get_language_model(app)
    if model is None:
        return None
    from bot.assistant import ModelAssistant

    return ModelAssistant(model, conversation)


def _desk(app: Flask, flows: FlowSet, conversation: Conversation) -> ServiceDesk:
    from bot.llm import get_language_model
    from bot.questions import ServiceDesk
    from translations.translator import get_translator

    return ServiceDesk(
        flows, conversation, get_language_model(app), partial(get_translator, app)
    )


def _opening(app: Flask, client: Client) -> Verdict:
    from bot.limits import get_limits

    return get_limits(app).opening(client)


def get_dialogue(app: Flask) -> Dialogue:
    return app.extensions["polku.dialogue"]


def anonymise_for(
    conversation: Conversation, body: str, values: dict[str, str] | None = None
) -> AnonymisedText:
    """Anonymise `body` with the conversation's own placeholders.

    The same person stays `<PERSON_1>` in every message of the conversation; the
    mapping to the real values is kept in the conversation's encrypted state.
    This is how text is prepared for a model or translator (bot/gate.py);
    `values` receives what each placeholder replaced in `body`.
    """
    # Imported here: Presidio and spaCy take a second to load, and most
    # processes (web server, CLI) never anonymise.
    from bot.anonymiser import anonymise

    state = dict(conversation.state or {})
    placeholders = {
        kind: dict(values) for kind, values in state.get("placeholders", {}).items()
    }
    anonymised = anonymise(body, placeholders, values)
    conversation.state = {**state, "placeholders": placeholders}

    return anonymised


def keyword(body: str) -> str:
    """Return `body` as a possible command word: trimmed, upper case, no end mark."""
    cleaned = fold(unicodedata.normalize("NFKC", body)).strip().strip(".!?,;:؟،")

    return " ".join(cleaned.split()).upper()


def respond(
    client: Client,
    conversation: Conversation,
    body: str,
    dialogue: Dialogue,
    *,
    media_count: int = 0,
    events: list[str] | None = None,
    stored: Callable[[], Stored] | None = None,
    course: CourseHook | None = None,
) -> list[str]:
    """Advance `conversation` by one inbound `body` and return the replies.

    Commands work at every stage. After STOP nothing is returned until START.
    A photo or file without text is not read; the client is asked to write.
    `events` receives ERASE when the client confirmed erasure (the caller
    erases), DATA_SUMMARY when they were told what is stored (to audit), and
    PRIVACY_REPLY when the replies must go out even after STOP, and TRANSLATE
    when free-text answers wait to be translated or the interview ended (the
    counsellor's summary is then drafted). `course` answers the messages of
    the civic-orientation course (joining, quiz answers, questions for the
    teacher) after the commands that work everywhere.
    """
    word = keyword(body)
    commands, language = dialogue.commands, client.language
    events = events if events is not None else []

    replies = _opt_out_turn(client, conversation, word, dialogue, events)
    if replies is None:
        replies = _privacy_turn(client, conversation, word, dialogue, events, stored)
    if replies is not None:
        return replies
    if word in commands.help and conversation.stage != COURSE:
        return [_help(language)]
    if word in commands.language:
        _remember_stage(conversation)
        conversation.stage = CHOOSING_LANGUAGE
        return [_language_menu(language)]
    if course is not None:
        replies = course(client, conversation, word, body, dialogue)
        if replies is not None:
            return replies
    if word in commands.human:
        events.append(TRANSLATE)
        return _hand_off(client, conversation, dialogue, events)

    if conversation.stage == NEW:
        refused = _refuse_opening(client, dialogue)
        if refused is not None:
            return refused
        conversation.stage = CHOOSING_LANGUAGE
        return [_first_contact(detect(body))]
    if media_count and not body.strip():
        return [_media_only(language, conversation)]
    if conversation.stage == CHOOSING_LANGUAGE:
        return _choose_language(client, conversation, body, dialogue)

    return _interview_turn(client, conversation, word, body, dialogue, events)


def _opt_out_turn(
    client: Client,
    conversation: Conversation,
    word: str,
    dialogue: Dialogue,
    events: list[str],
) -> list[str] | None:
    """Handle STOP and START; return None when the turn goes on."""
    commands, language = dialogue.commands, client.language
    if word in commands.stop:
        if not client.opted_out:
            client.opted_out_at = utcnow()
            logger.info("client %s: opted out", client.id)
        return []
    if not client.opted_out:
        return None
    if word in commands.delete | commands.my_data or (conversation.state or {}).get(
        "confirm_erasure"
    ):
        # STOP ends the conversation, not the client's rights: DELETE and MY
        # DATA are still answered, and only they.
        events.append(PRIVACY_REPLY)
        return None
    if word not in commands.start:
        return []
    client.opted_out_at = None
    logger.info("client %s: opted in again", client.id)

    return [text("resumed", language), *_prompt(conversation, language, dialogue)]


def _privacy_turn(
    client: Client,
    conversation: Conversation,
    word: str,
    dialogue: Dialogue,
    events: list[str],
    stored: Callable[[], Stored] | None,
) -> list[str] | None:
    """Handle DELETE (and its confirmation) and MY DATA; None when not asked."""
    commands, language = dialogue.commands, client.language
    if (conversation.state or {}).get("confirm_erasure"):
        conversation.state = _without(conversation.state, "confirm_erasure")
        if word in commands.yes:
            client.erasing_at = utcnow()
            events.append(ERASE)
            return [_in_language("privacy.erased", language)]
        cancelled = _in_language("privacy.erase_cancelled", language)
        return [cancelled, *_prompt(conversation, language, dialogue)]
    if word in commands.delete:
        conversation.state = {**(conversation.state or {}), "confirm_erasure": True}
        return [_in_language("privacy.erase_confirm", language)]
    if word in commands.my_data:
        events.append(DATA_SUMMARY)
        return [_summary(conversation, language, stored)]

    return None


def _interview_turn(
    client: Client,
    conversation: Conversation,
    word: str,
    body: str,
    dialogue: Dialogue,
    events: list[str],
) -> list[str]:
    flow, language = dialogue.flows.interview, client.language
    state = _interview(conversation)
    if word in dialogue.commands.restart or state is None:
        refused = _refuse_opening(client, dialogue) if state is not None else None
        if refused is not None:
            return refused
        state = state if state is not None else {}
        outcome = engine.restart(flow, state, language)
        conversation.stage = INTERVIEW
        conversation.state = _without(conversation.state, "outcome")
        _save_interview(conversation, state)
        return outcome.replies
    if conversation.stage == DONE:
        if looks_like_question(body):
            return _answer_question(conversation, body, language, dialogue)
        return [text("flow.already_finished", language)]
    if word in dialogue.commands.start:
        return [engine.current_question(flow, state, language)]
    offered = (conversation.state or {}).get("confirm_language")
    if offered:
        conversation.state = _without(conversation.state, "confirm_language")
        if word in dialogue.commands.yes or word in dialogue.commands.no:
            return _answer_switch(
                client, conversation, flow, state, offered, word, dialogue
            )
    if word in dialogue.commands.back:
        outcome = engine.go_back(flow, state, language)
    elif engine.is_question(flow, state, body, language):
        replies = _answer_question(conversation, body, language, dialogue)
        return [*replies, engine.current_question(flow, state, language)]
    else:
        step = flow.steps[state["step"]]
        vocabulary = dialogue.vocabulary(conversation) if dialogue.vocabulary else None
        assistant = dialogue.assistant(conversation) if dialogue.assistant else None
        outcome = engine.answer(
            flow, state, body, language, vocabulary=vocabulary, assistant=assistant
        )
        if outcome.ended or (
            step.type in FREE_TEXT_TYPES and step.slot in state["slots"]
        ):
            # Answers in Finnish, and at the end the summary's draft.
            events.append(TRANSLATE)
    _save_interview(conversation, state)
    if outcome.ended:
        _finish(client, conversation, dialogue, reason="finished")
        events.append(HANDOFF)
        return [*outcome.replies, *_promise(conversation, dialogue, language)]

    return outcome.replies + _offer_switch(client, conversation, body)


def _refuse_opening(client: Client, dialogue: Dialogue) -> list[str] | None:
    """Return the replies refusing one more conversation today, or None to go on.

    The client is told once a day; later tries get no reply.
    """
    verdict = dialogue.opening(client) if dialogue.opening else None
    if verdict is None or not verdict.limited:
        return None
    if not verdict.first:
        return []

    return [client_notice("limit.conversations", client.language, dialogue.contact)]


def _answer_question(
    conversation: Conversation, body: str, language: str | None, dialogue: Dialogue
) -> list[str]:
    """Answer a question about services; keep its topic, never its words."""
    if dialogue.desk is not None:
        desk = dialogue.desk(conversation)
    else:
        from bot.questions import ServiceDesk

        desk = ServiceDesk(dialogue.flows, conversation)
    answered = desk.answer(body, language)
    asked = (conversation.state or {}).get("questions", [])
    record = {"topic": answered.topic, "cited": list(answered.cited)}
    conversation.state = {**(conversation.state or {}), "questions": [*asked, record]}

    return answered.replies


def _offer_switch(client: Client, conversation: Conversation, body: str) -> list[str]:
    """Ask, in the language the client wrote in, whether to continue in it.

    Only for a clear text in another of Polku's languages, and never again for a
    language the client has declined.
    """
    found = detect(body)
    declined = (conversation.state or {}).get("declined_languages", [])
    if found is None or found.code == client.language or found.code in declined:
        return []
    conversation.state = {**(conversation.state or {}), "confirm_language": found.code}
    logger.info("client %s: offered a switch to %s", client.id, found.code)

    return [text("language.confirm_switch", found.code)]


def _answer_switch(
    client: Client,
    conversation: Conversation,
    flow: Any,
    state: dict[str, Any],
    offered: str,
    word: str,
    dialogue: Dialogue,
) -> list[str]:
    if word in dialogue.commands.yes:
        client.language = offered
        logger.info("client %s: switched to %s", client.id, offered)
    else:
        declined = (conversation.state or {}).get("declined_languages", [])
        conversation.state = {
            **(conversation.state or {}),
            "declined_languages": [*declined, offered],
        }

    return [engine.current_question(flow, state, client.language)]


def _interview(conversation: Conversation) -> dict[str, Any] | None:
    """Return a deep copy of the interview state for the engine to change.

    A copy, because the ORM compares the new state with the loaded one to decide
    whether to write: changing the loaded dicts in place would hide the change.
    """
    state = (conversation.state or {}).get("interview")

    return copy.deepcopy(state) if state else None


def _save_interview(conversation: Conversation, state: dict[str, Any]) -> None:
    # Assign a new dict: the JSON column notices replacement, not mutation.
    conversation.state = {**(conversation.state or {}), "interview": state}


def _start_interview(
    conversation: Conversation, dialogue: Dialogue, language: str
) -> list[str]:
    flow = dialogue.flows.interview
    state = engine.new_state(flow)
    _save_interview(conversation, state)
    conversation.stage = INTERVIEW
    count = engine.count_questions(flow)
    welcome = (
        text("welcome", language) + " " + text("flow.start", language, count=count)
    )

    return [welcome, engine.current_question(flow, state, language)]


def _finish(
    client: Client, conversation: Conversation, dialogue: Dialogue, reason: str
) -> None:
    """Close the interview: keep the rules' suggestions for the counsellor."""
    state = _interview(conversation) or {}
    suggestions = dialogue.flows.rules.suggest(state.get("slots", {}))
    conversation.stage = DONE
    conversation.state = {
        **(conversation.state or {}),
        "outcome": {
            "reason": reason,
            "at": utcnow().isoformat(),
            "suggestions": [suggestion.as_dict() for suggestion in suggestions],
            "skipped": list(state.get("skipped", [])),
        },
    }
    logger.info(
        "conversation %s: interview %s, %d suggestions",
        conversation.id,
        reason,
        len(suggestions),
    )


def _hand_off(
    client: Client, conversation: Conversation, dialogue: Dialogue, events: list[str]
) -> list[str]:
    """Pass the case to a person; after the interview, its handoff is open already."""
    language = client.language
    state = _interview(conversation)
    if conversation.stage == DONE:
        outcome = {**conversation.state.get("outcome", {}), "person_requested": True}
        conversation.state = {**conversation.state, "outcome": outcome}
    else:
        if state is not None and state.get("status") == engine.ACTIVE:
            engine.hand_off(state, language)
            _save_interview(conversation, state)
        _finish(client, conversation, dialogue, reason="client_asked_for_a_person")
    # Opening is idempotent: one conversation is one case for the counsellors.
    events.append(HANDOFF)

    return [
        _in_language("flow.human", language),
        *_promise(conversation, dialogue, language),
    ]


def _promise(
    conversation: Conversation, dialogue: Dialogue, language: str | None
) -> list[str]:
    """Tell the client honestly by when a counsellor will be in touch."""
    teams = dialogue.flows.teams
    if teams is None:
        return []
    outcome = (conversation.state or {}).get("outcome") or {}
    since = datetime.fromisoformat(outcome["at"]) if outcome.get("at") else utcnow()
    deadline = teams.reply.deadline(since)
    # Before a language is chosen, in Finnish and English like other texts.
    chosen = [language] if language in LANGUAGES_BY_CODE else ["fi", "en"]
    lines = [
        text(
            "handoff.contact",
            code,
            days=teams.reply.working_days,
            date=format_skeleton("MMMMEEEEd", deadline, locale=code),
        )
        for code in chosen
    ]

    return ["\n\n".join(lines)]


def _remember_stage(conversation: Conversation) -> None:
    if conversation.stage in (INTERVIEW, DONE, COURSE):
        conversation.state = {
            **(conversation.state or {}),
            "resume": conversation.stage,
        }


def _choose_language(
    client: Client, conversation: Conversation, body: str, dialogue: Dialogue
) -> list[str]:
    code = parse_language_choice(body)
    if code is None:
        retry = text("language.not_understood", client.language, count=len(LANGUAGES))
        return [retry + "\n" + _menu_lines()]

    client.language = code
    logger.info("client %s: language %s", client.id, code)
    course = (conversation.state or {}).get("resume") == COURSE
    notice = _notice(
        code, conversation, dialogue, "course.notice_ai" if course else "notice.ai"
    )
    resume = (conversation.state or {}).get("resume")
    if resume is None:
        return [notice, *_start_interview(conversation, dialogue, code)]

    # A change of language mid-way: carry on where the client was.
    conversation.stage = resume
    conversation.state = _without(conversation.state, "resume")
    return [notice, *_prompt(conversation, code, dialogue)]


def _prompt(
    conversation: Conversation, language: str | None, dialogue: Dialogue
) -> list[str]:
    """Return what the client was last asked, after START or a language change."""
    if conversation.stage in (NEW, CHOOSING_LANGUAGE):
        conversation.stage = CHOOSING_LANGUAGE
        return [_language_menu(language)]
    if conversation.stage == COURSE:
        from bot.course import welcome

        group = (conversation.state or {}).get("course_welcome")
        if group:
            # Joined before choosing a language: the welcome comes now.
            conversation.state = _without(conversation.state, "course_welcome")
            return [welcome(group, language)]
        return [text("course.continue", language)]
    state = _interview(conversation)
    if conversation.stage == DONE or state is None:
        return [text("flow.already_finished", language)]

    return [engine.current_question(dialogue.flows.interview, state, language)]


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


def _media_only(language: str | None, conversation: Conversation) -> str:
    reply = _in_language("media.not_supported", language)
    if conversation.stage == CHOOSING_LANGUAGE:
        reply += "\n" + _menu_lines()

    return reply


def _bilingual(key: str, separator: str = "\n\n") -> str:
    """Return text `key` in Finnish and English, for a client with no language yet."""
    return text(key, "fi") + separator + text(key, "en")


def _first_contact(found: Detection | None) -> str:
    # The client's language is not known yet: greet in Finnish and English, and
    # if their first text clearly was in another language, offer it in that one.
    greeting = _bilingual("first_contact.hello", "\n")
    if found is not None and found.code not in ("fi", "en"):
        number = list(LANGUAGES_BY_CODE).index(found.code) + 1
        greeting = (
            text("language.detected", found.code, number=number) + "\n\n" + greeting
        )

    return f"{greeting}\n\n{_language_menu(None)}"


def language_menu(language: str | None) -> str:
    """The numbered language menu, introduced in `language` (or fi and en)."""
    return _language_menu(language)


def course_notice(language: str, conversation: Conversation, dialogue: Dialogue) -> str:
    """The AI and privacy notice of the civic-orientation course."""
    return _notice(language, conversation, dialogue, "course.notice_ai")


def _language_menu(language: str | None) -> str:
    if language in LANGUAGES_BY_CODE:
        intro = text("language.menu_intro", language)
    else:
        intro = _bilingual("language.menu_intro", " / ")

    return f"{intro}\n{_menu_lines()}"


def _notice(
    language: str,
    conversation: Conversation,
    dialogue: Dialogue,
    ai: str = "notice.ai",
) -> str:
    """Return the AI and privacy notice; remember that the client has seen it."""
    conversation.state = {**(conversation.state or {}), "notice_language": language}
    where = dialogue.contact or text("contact.default", language)
    parts = [
        text(ai, language),
        text("notice.data", language),
        text("notice.rights", language, contact=where),
        text("notice.more", language, url=dialogue.privacy_url),
    ]

    return "\n\n".join(parts)


def _help(language: str | None) -> str:
    return _in_language("help", language)


def client_notice(
    key: str, language: str | None, contact: str = "", **values: str | int
) -> str:
    """Return text `key` in the client's language (or fi and en), with {contact}."""
    codes = [language] if language in LANGUAGES_BY_CODE else ["fi", "en"]
    texts = [
        text(key, code, contact=contact or text("contact.default", code), **values)
        for code in codes
    ]

    return "\n\n".join(texts)


def _in_language(key: str, language: str | None) -> str:
    """Return text `key` in the client's language, or bilingual if none is chosen."""
    if language in LANGUAGES_BY_CODE:
        return text(key, language)

    return _bilingual(key)


def _without(state: dict[str, Any] | None, key: str) -> dict[str, Any]:
    return {name: value for name, value in (state or {}).items() if name != key}


def _summary(
    conversation: Conversation,
    language: str | None,
    stored: Callable[[], Stored] | None,
) -> str:
    """Tell the client what is stored about them, in counts and dates only."""
    facts = stored() if stored else Stored(messages=0, since=None)
    answers = len(((conversation.state or {}).get("interview") or {}).get("slots", {}))
    classes = record_classes()
    since = (
        facts.since.astimezone(HELSINKI).strftime("%-d.%-m.%Y") if facts.since else "-"
    )
    values = {
        "messages": facts.messages,
        "since": since,
        "answers": answers,
        "message_days": classes["message"].retention.days,
        "answer_days": classes["interview_answers"].retention.days,
    }
    if language in LANGUAGES_BY_CODE:
        return text("privacy.summary", language, **values)

    return (
        text("privacy.summary", "fi", **values)
        + "\n\n"
        + text("privacy.summary", "en", **values)
    )
