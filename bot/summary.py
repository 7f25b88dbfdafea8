"""The counsellor's summary: the client's answers sorted, and a model's draft.

Built when an interview ends. Without a language model it is the answers in
Finnish grouped as flows/summary.yaml says, the rules' flags and suggested
services with their reasons, and what is still open: nothing is guessed. With a
model, `draft_summary` (a job after the interview) adds a short draft in which
every point is marked as said by the client or inferred by the model.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from babel import Locale

from bot.counsellor import (
    SKIPPED,
    Answer,
    answers_for_counsellor,
    digest,
    esco_lines,
    locked_conversation,
)
from bot.db import Database
from bot.llm import LanguageModel, ModelUnavailableError, Prompt
from bot.models import utcnow
from flows import SUMMARY_SECTIONS, FlowSet
from translations import counsellor_text
from translations.translator import ORIGINAL, TRANSLATED, placeholders_in

logger = logging.getLogger(__name__)

DRAFT_TEMPLATE = "draft_summary@1"
DRAFT_SECTIONS = (*SUMMARY_SECTIONS, "next_steps")
SAID, INFERRED = "said", "inferred"
MAX_POINTS, MAX_POINT = 6, 300
# Points go to the counsellor as they are: nothing like a link.
UNSAFE_POINT = re.compile(r"https?:|www\.|\{|\}")

DRAFT_INSTRUCTIONS = """\
You help a counsellor of the municipal employment services in Finland prepare \
the first meeting with a job seeker. Below are the client's interview answers, \
in Finnish, with the counsellors' own rules' suggestions. Write a short summary \
in Finnish in five sections: situation, strengths, goals, obstacles and \
next_steps. Each point is one plain sentence with a basis: "said" when the \
client said it in the answers, "inferred" when it is your reading of them. \
Infer nothing about health, religion, ethnicity or family. You suggest; the \
counsellor decides. Keep placeholders such as <PERSON_1> as they are. At most \
{points} points a section."""


@dataclass(frozen=True)
class Summary:
    """What the counsellor reads first; `render_summary` makes it text."""

    sections: dict[str, list[str]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    open_questions: list[str] = field(default_factory=list)
    person_requested: bool = False
    # A language model's draft (`draft_summary`): sections of points, each
    # with its basis, said or inferred.
    draft: dict[str, Any] | None = None


def summarise(flows: FlowSet, state: dict[str, Any], language: str = "fi") -> Summary:
    """Summarise a conversation's `state` (its interview and outcome)."""
    interview = state.get("interview") or {}
    outcome = state.get("outcome") or {}
    answers = {a.step: a for a in answers_for_counsellor(flows.interview, interview)}

    sections = {
        section: [
            _line(answers[step], language)
            for step in flows.summary[section]
            if step in answers and answers[step].status != SKIPPED
        ]
        for section in SUMMARY_SECTIONS
    }
    open_questions = [
        counsellor_text(f"counsellor.field.{a.step}", language)
        for a in answers.values()
        if a.status == SKIPPED
    ]
    flags, next_steps = _from_rules(flows, outcome.get("suggestions", []), language)

    return Summary(
        sections=sections,
        flags=flags,
        next_steps=next_steps,
        open_questions=open_questions,
        person_requested=outcome.get("reason") == "client_asked_for_a_person"
        or bool(outcome.get("person_requested")),
        draft=state.get("draft_summary"),
    )


def _line(answer: Answer, language: str) -> str:
    line = f"{counsellor_text(f'counsellor.field.{answer.step}', language)}: "
    line += answer.text or counsellor_text("counsellor.summary.nothing", language)
    if answer.status not in (ORIGINAL, TRANSLATED):
        spoken = Locale.parse(language).languages.get(answer.language or "", "?")
        key = f"counsellor.status.{answer.status}"
        line += f" ({counsellor_text(key, language, language=spoken)})"
    extra = esco_lines(answer.esco, language)

    return "\n".join([line, *(f"  {text}" for text in extra)])


def _from_rules(
    flows: FlowSet, suggestions: list[dict[str, Any]], language: str
) -> tuple[list[str], list[str]]:
    """Return the flags and the suggested services, each with its reason."""
    rules = flows.rules
    flags: list[str] = []
    next_steps: list[str] = []
    for suggestion in suggestions:
        because = suggestion.get("because", "")
        for flag in suggestion.get("flags", []):
            label = rules.flag_labels.get(flag, flag)
            flags.append(f"{label} ({because})" if because else label)
        for service_id in suggestion.get("services", []):
            service = rules.services.get(service_id)
            name = service.name.get(language, service.name.get("fi")) if service else ""
            next_steps.append(f"{name or service_id}: {because}")

    return list(dict.fromkeys(flags)), list(dict.fromkeys(next_steps))


def render_summary(summary: Summary, language: str = "fi") -> str:
    """Return the summary as plain text for an e-mail or the chat command."""
    blocks = [counsellor_text("counsellor.summary.heading", language)]
    if summary.person_requested:
        blocks.append(counsellor_text("counsellor.summary.person_requested", language))
    if summary.draft:
        blocks.append(render_draft(summary.draft, language))
    for section in SUMMARY_SECTIONS:
        lines = list(summary.sections.get(section, []))
        if section == "obstacles":
            lines += summary.flags
        if lines:
            heading = counsellor_text(f"counsellor.summary.{section}", language)
            blocks.append("\n".join([heading, *(f"- {line}" for line in lines)]))
    if summary.next_steps:
        heading = counsellor_text("counsellor.summary.next_steps", language)
        blocks.append("\n".join([heading, *(f"- {s}" for s in summary.next_steps)]))
    if summary.open_questions:
        heading = counsellor_text("counsellor.summary.open", language)
        blocks.append(f"{heading}: {', '.join(summary.open_questions)}")

    return "\n\n".join(blocks)


def render_draft(draft: dict[str, Any], language: str = "fi") -> str:
    """Return a model's draft with each point marked as said or inferred."""
    lines = [
        counsellor_text("counsellor.draft.heading", language, model=draft["model"])
    ]
    marks = {
        SAID: counsellor_text("counsellor.draft.said", language),
        INFERRED: counsellor_text("counsellor.draft.inferred", language),
    }
    for section in DRAFT_SECTIONS:
        points = draft["sections"].get(section) or []
        if points:
            lines.append(counsellor_text(f"counsellor.summary.{section}", language))
            lines.extend(f"- {p['text']} ({marks[p['basis']]})" for p in points)

    return "\n".join(lines)


def draft_summary(
    db: Database, conversation_id: int, model: LanguageModel, flows: FlowSet
) -> bool:
    """Have the model draft the summary of an ended interview; True if kept.

    The model reads the deterministic summary, anonymised. Its draft is kept
    only if it fits the schema, uses no placeholder it was not given, and the
    interview has not changed meanwhile. A failing model leaves no draft: the
    counsellor still has the deterministic summary.
    """
    from bot.conversation import DONE, anonymise_for

    with db.transaction() as session:
        conversation = locked_conversation(session, conversation_id)
        if conversation is None or conversation.stage != DONE:
            return False
        state = conversation.state or {}
        facts = render_summary(summarise(flows, {**state, "draft_summary": None}))
        of = digest(facts)
        if (state.get("draft_summary") or {}).get("of") == of:
            return False
        anonymised = anonymise_for(conversation, facts)
    prompt = Prompt(
        purpose="summary",
        template=DRAFT_TEMPLATE,
        instructions=DRAFT_INSTRUCTIONS.format(points=MAX_POINTS),
        client_text=(anonymised,),
    )
    try:
        answer = model.complete_json(prompt, draft_schema())
    except ModelUnavailableError:
        logger.info("conversation %s: no summary draft", conversation_id)
        return False
    sections = checked_draft(answer, set(placeholders_in(anonymised.text)))
    if sections is None:
        logger.warning("conversation %s: summary draft refused", conversation_id)
        return False
    with db.transaction() as session:
        conversation = locked_conversation(session, conversation_id)
        if conversation is None:
            return False
        state = conversation.state or {}
        now = render_summary(summarise(flows, {**state, "draft_summary": None}))
        if digest(now) != of:
            return False  # the interview changed while the model wrote
        draft = {
            "of": of,
            "sections": sections,
            "model": model.backend.model,
            "template": DRAFT_TEMPLATE,
            "at": utcnow().isoformat(),
        }
        conversation.state = {**state, "draft_summary": draft}
    logger.info("conversation %s: summary drafted", conversation_id)

    return True


def draft_schema() -> dict[str, Any]:
    point = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "maxLength": MAX_POINT},
            "basis": {"type": "string", "enum": [SAID, INFERRED]},
        },
        "required": ["text", "basis"],
        "additionalProperties": False,
    }

    return {
        "type": "object",
        "properties": {s: {"type": "array", "items": point} for s in DRAFT_SECTIONS},
        "required": list(DRAFT_SECTIONS),
        "additionalProperties": False,
    }


def checked_draft(
    answer: dict[str, Any], placeholders: set[str]
) -> dict[str, list[dict[str, str]]] | None:
    """Return the draft's sections if every point may be shown, else None."""
    sections = {}
    for section in DRAFT_SECTIONS:
        points = []
        for point in answer[section][:MAX_POINTS]:
            words = " ".join(point["text"].split())
            if not words:
                continue
            if UNSAFE_POINT.search(words):
                return None
            if not set(placeholders_in(words)) <= placeholders:
                return None  # a placeholder the model made up
            points.append({"text": words, "basis": point["basis"]})
        sections[section] = points

    return sections
