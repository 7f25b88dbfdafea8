"""What the counsellor reads: every answer in Finnish, beside the client's own words.

After the worker has answered a message that held free text, `translate_answers`
runs as a job of its own on the client's turn: anonymise, translate locally,
restore the values, keep the Finnish with the interview. The client gets their
next question first, and a slow or missing model never holds up the interview.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from babel import Locale
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.conversation import anonymise_for
from bot.db import Database
from bot.gate import AnonymisedText
from bot.models import Client, Conversation
from flows.engine import CONFIRMED
from flows.model import CHOICE_TYPES, FREE_TEXT_TYPES, Choice, Flow, Step
from translations import counsellor_text, text
from translations.detection import detect
from translations.translator import (
    NOT_TRANSLATED,
    ORIGINAL,
    TRANSLATED,
    Translation,
    Translator,
)

logger = logging.getLogger(__name__)

COUNSELLOR_LANGUAGE = "fi"


# Besides the translator's statuses: not yet translated, and not answered.
PENDING, SKIPPED = "pending", "skipped"


@dataclass(frozen=True)
class Answer:
    """One answer as the counsellor reads it: in Finnish, or why it is not."""

    step: str
    question: str
    text: str
    own_words: str | None = None
    language: str | None = None
    status: str = ORIGINAL
    # The step's ESCO mapping (flows/engine.py): status, items, offered.
    esco: dict[str, Any] | None = None


def digest(value: str) -> str:
    """Identify an answer's text, so a changed answer is translated again."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def untranslated(flow: Flow, state: dict[str, Any]) -> list[str]:
    """Return the free-text slots whose current answer has no translation yet."""
    slots = state.get("slots", {})
    done = state.get("translations", {})
    pending = []
    for step in flow.steps.values():
        value = slots.get(step.slot)
        if step.type not in FREE_TEXT_TYPES or not isinstance(value, str):
            continue
        if done.get(step.slot, {}).get("of") != digest(value):
            pending.append(step.slot)

    return pending


@dataclass
class _Work:
    """One answer to translate: which, from what, and as the model may see it."""

    slot: str
    of: str
    source: str
    text: AnonymisedText | None = None
    values: dict[str, str] = field(default_factory=dict)
    done: Translation | None = None


def translate_answers(
    db: Database, conversation_id: int, translator: Translator, flow: Flow
) -> int:
    """Translate the conversation's untranslated free-text answers into Finnish.

    Anonymising updates the conversation's placeholders, so it runs under the
    client's lock; the translating itself runs outside any transaction, and its
    result is kept only if the answer is still the same. Returns how many
    answers got a new translation entry (translated or not).
    """
    with db.transaction() as session:
        conversation = locked_conversation(session, conversation_id)
        if conversation is None:
            return 0
        work = _prepare(conversation, flow, translator)
    if not work:
        return 0

    results = [(item, _translate(translator, item)) for item in work]
    with db.transaction() as session:
        conversation = locked_conversation(session, conversation_id)
        if conversation is None:
            return 0
        stored = _keep(conversation, results)
    logger.info("conversation %s: translated answers, kept %d", conversation_id, stored)

    return stored


def translate_in_place(
    conversation: Conversation, translator: Translator, flow: Flow
) -> int:
    """Translate the answers of a conversation that is not stored (`chat`)."""
    work = _prepare(conversation, flow, translator)

    return _keep(conversation, [(item, _translate(translator, item)) for item in work])


def locked_conversation(session: Session, conversation_id: int) -> Conversation | None:
    """Return the conversation, holding its client's lock (FOR UPDATE)."""
    client_id = session.scalar(
        select(Conversation.client_id).where(Conversation.id == conversation_id)
    )
    if client_id is None:
        return None
    # FOR UPDATE in PostgreSQL, as the worker takes for each inbound message.
    session.scalars(select(Client).where(Client.id == client_id).with_for_update())

    return session.get(Conversation, conversation_id, populate_existing=True)


def _prepare(
    conversation: Conversation, flow: Flow, translator: Translator
) -> list[_Work]:
    state = (conversation.state or {}).get("interview") or {}
    client = conversation.client
    work = []
    for slot in untranslated(flow, state):
        value = state["slots"][slot]
        written_in = state.get("languages", {}).get(slot) or client.language
        # The client may write in another language than the one they chose.
        found = detect(value)
        source = found.code if found else written_in or COUNSELLOR_LANGUAGE
        item = _Work(slot, digest(value), source)
        if source == COUNSELLOR_LANGUAGE:
            item.done = Translation(source, COUNSELLOR_LANGUAGE, ORIGINAL)
        elif not translator.can_translate(source, COUNSELLOR_LANGUAGE):
            item.done = Translation(source, COUNSELLOR_LANGUAGE, NOT_TRANSLATED)
        else:
            # Anonymise before translating: names stay out of every model.
            item.text = anonymise_for(conversation, value, item.values)
        work.append(item)

    return work


def _translate(translator: Translator, item: _Work) -> Translation:
    if item.done is not None or item.text is None:
        return item.done or Translation(item.source, COUNSELLOR_LANGUAGE, ORIGINAL)

    return translator.translate(
        item.text, item.source, COUNSELLOR_LANGUAGE, item.values
    )


def _keep(conversation: Conversation, results: list[tuple[_Work, Translation]]) -> int:
    state = copy.deepcopy((conversation.state or {}).get("interview") or {})
    slots, translations = state.get("slots", {}), state.setdefault("translations", {})
    stored = 0
    for item, translation in results:
        value = slots.get(item.slot)
        if not isinstance(value, str) or digest(value) != item.of:
            continue
        translations[item.slot] = {
            "of": item.of,
            "source": item.source,
            "status": translation.status,
            "text": translation.text,
        }
        stored += 1
    # A new dict: the JSON column notices replacement, not mutation.
    conversation.state = {**(conversation.state or {}), "interview": state}

    return stored


def answers_for_counsellor(flow: Flow, state: dict[str, Any]) -> list[Answer]:
    """Return the interview's answers in Finnish, in the order they were given.

    Free text is the Finnish translation where there is one, with the client's
    own words beside it; otherwise the own words with the reason they are not
    in Finnish. A skipped step is listed with no answer.
    """
    slots, translations = state.get("slots", {}), state.get("translations", {})
    mappings = state.get("esco", {})
    answers = []
    for step_id in state.get("path", []):
        step = flow.steps[step_id]
        asked = text(step.question, COUNSELLOR_LANGUAGE)
        esco = mappings.get(step.slot)
        if step.slot not in slots:
            answers.append(Answer(step.id, asked, "", status=SKIPPED, esco=esco))
            continue
        value = slots[step.slot]
        if step.type not in FREE_TEXT_TYPES or not isinstance(value, str):
            answers.append(Answer(step.id, asked, _in_finnish(step, value)))
            continue
        entry = translations.get(step.slot, {})
        if entry.get("of") != digest(value):
            entry = {"status": PENDING}
        status = entry.get("status", PENDING)
        shown = entry.get("text") if status == TRANSLATED else value
        own = value if status != ORIGINAL else None
        source = entry.get("source")
        answers.append(Answer(step.id, asked, shown, own, source, status, esco))

    return answers


def _in_finnish(step: Step, value: Any) -> str:
    if step.type in CHOICE_TYPES:
        labels = {choice.value: choice for choice in step.choices}
        chosen = value if isinstance(value, list) else [value]
        return ", ".join(_label(labels[v]) if v in labels else str(v) for v in chosen)
    if step.type == "yes_no":
        return text("common.yes" if value else "common.no", COUNSELLOR_LANGUAGE)

    return str(value)


def _label(choice: Choice) -> str:
    return choice.label if choice.literal else text(choice.label, COUNSELLOR_LANGUAGE)


def render_for_counsellor(answers: list[Answer], language: str = "fi") -> str:
    """Return the answers as plain text: question, answer, and how it was made."""
    names = Locale.parse(language).languages
    blocks = [counsellor_text("counsellor.heading", language)]
    for answer in answers:
        lines = [answer.question, f"  {answer.text}" if answer.text else ""]
        spoken = names.get(answer.language or "", answer.language or "")
        if answer.status != ORIGINAL:
            status = f"counsellor.status.{answer.status}"
            lines.append(f"  ({counsellor_text(status, language, language=spoken)})")
        if answer.own_words and answer.status == TRANSLATED:
            label = counsellor_text("counsellor.own_words", language, language=spoken)
            lines.append(f"  {label}: {answer.own_words}")
        lines.extend(f"  {line}" for line in esco_lines(answer.esco, language))
        blocks.append("\n".join(line for line in lines if line))

    return "\n\n".join(blocks)


def esco_lines(mapping: dict[str, Any] | None, language: str = "fi") -> list[str]:
    """Return what the counsellor reads of a step's ESCO mapping."""
    if not mapping:
        return []
    status = mapping.get("status")
    if status != CONFIRMED:
        offered = mapping.get("offered", 0)
        return [counsellor_text(f"counsellor.esco.{status}", language, offered=offered)]
    lines = []
    for item in mapping.get("items", []):
        score = item.get("score")
        lines.append(
            counsellor_text(
                "counsellor.esco.confirmed",
                language,
                label=item.get("label_fi") or item["label"],
                code=item.get("code") or item.get("isco_group") or "-",
                score="-" if score is None else f"{score:.2f}",
                uri=item["uri"],
            )
        )

    return lines
