"""The counsellor's summary in deterministic mode: the client's answers, sorted.

Built when an interview ends, without a language model: the answers in Finnish
grouped as flows/summary.yaml says, the rules' flags and suggested services with
their reasons, and what is still open. Every line is something the client said
or a counsellor's rule concluded; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from babel import Locale

from bot.counsellor import SKIPPED, Answer, answers_for_counsellor, esco_lines
from flows import SUMMARY_SECTIONS, FlowSet
from translations import counsellor_text
from translations.translator import ORIGINAL, TRANSLATED


@dataclass(frozen=True)
class Summary:
    """What the counsellor reads first; `render_summary` makes it text."""

    sections: dict[str, list[str]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    open_questions: list[str] = field(default_factory=list)
    person_requested: bool = False


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
