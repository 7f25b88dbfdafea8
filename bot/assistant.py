"""The language model in the interview: it reads answers the rules cannot, and asks
one follow-up on a vague one. The flow engine calls it (flows/engine.py); text
leaves only anonymised (bot/gate.py), and the engine checks every value it returns.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from bot.llm import LanguageModel, ModelUnavailableError, Prompt, prompt_language
from flows.answers import find_topic
from flows.engine import ESCO_KINDS, Reading
from flows.model import CHOICE_TYPES, FREE_TEXT_TYPES, Flow, Step
from translations import text

if TYPE_CHECKING:
    from bot.models import Conversation

logger = logging.getLogger(__name__)

READ_TEMPLATE = "read_answer@1"
MAX_TERMS, MAX_TERM, MAX_FOLLOW_UP = 5, 80, 300
# A follow-up goes to the client as it is: nothing that looks like a link, an
# address or a placeholder of the anonymiser.
UNSAFE_FOLLOW_UP = re.compile(r"<|>|https?:|www\.|@|\{|\}")

READ_INSTRUCTIONS = """\
You help a counsellor of the municipal employment services in {area}, Finland, \
with a first interview that a job seeker answers by text message. You never \
decide anything about the client; you only read what they wrote.

The client was asked: "{question}"
They answered in {language}. Return JSON with these fields:
{fields}
Use null for anything the client did not clearly say; never guess."""

FIELD_VALUE = "- value: the answer to the question, {meaning}"
FIELD_TERMS = (
    "- terms: the {kind} the answer names, as short English job titles or "
    "skills as the ESCO classification would name them (at most 5)"
)
FIELD_AHEAD = (
    "- ahead: answers the client already gave to these later questions, "
    "each null unless stated:\n{questions}"
)
FIELD_FOLLOW_UP = (
    "- vague: true when the answer is too vague for a counsellor to prepare a "
    "meeting (for example 'many jobs', 'all kinds of things')\n"
    "- follow_up: when vague, one short, friendly question in {language} that asks "
    "for what is missing, in the interview's plain tone; otherwise null. Never ask "
    "about {never}."
)


class ModelAssistant:
    """A language model reading one conversation's answers."""

    def __init__(
        self, model: LanguageModel, conversation: Conversation, area: str = "Mikkeli"
    ):
        self.model = model
        self.conversation = conversation
        self.area = area

    def read(
        self,
        flow: Flow,
        step: Step,
        answer: str,
        language: str | None,
        *,
        state: dict[str, Any],
        follow_up: bool,
    ) -> Reading | None:
        """Return what the model read from `answer`, or None when it cannot help."""
        from bot.conversation import anonymise_for

        ahead = [
            later
            for later in flow.steps.values()
            if later.read_ahead
            and later.id != step.id
            and later.slot not in state.get("slots", {})
        ]
        schema = reading_schema(step, ahead, follow_up)
        if not schema["properties"]:
            return None  # nothing the model could add to this answer
        prompt = Prompt(
            purpose="slot_extraction",
            template=READ_TEMPLATE,
            instructions=self._instructions(flow, step, language, ahead, follow_up),
            client_text=(anonymise_for(self.conversation, answer),),
        )
        try:
            found = self.model.complete_json(prompt, schema)
        except ModelUnavailableError:
            logger.info("conversation %s: answer read by rules", self.conversation.id)
            return None

        return Reading(
            value=found.get("value"),
            terms=_terms(found.get("terms") or []),
            ahead={
                slot: value
                for slot, value in (found.get("ahead") or {}).items()
                if value is not None
            },
            follow_up=(
                safe_follow_up(flow, found.get("follow_up"))
                if found.get("vague")
                else None
            ),
        )

    def _instructions(
        self,
        flow: Flow,
        step: Step,
        language: str | None,
        ahead: list[Step],
        follow_up: bool,
    ) -> str:
        name = prompt_language(language)
        fields = []
        if step.type not in FREE_TEXT_TYPES:
            fields.append(FIELD_VALUE.format(meaning=_meaning(step)))
        if step.type in ESCO_KINDS:
            kind = "occupations" if ESCO_KINDS[step.type] == "occupation" else "skills"
            fields.append(FIELD_TERMS.format(kind=kind))
        if ahead:
            questions = "\n".join(
                f'  - {later.slot}: "{text(later.question, "en")}", {_meaning(later)}'
                for later in ahead
            )
            fields.append(FIELD_AHEAD.format(questions=questions))
        if follow_up:
            never = ", ".join(flow.never_ask_about) or "private matters"
            fields.append(FIELD_FOLLOW_UP.format(language=name, never=never))

        return READ_INSTRUCTIONS.format(
            area=self.area,
            question=text(step.question, "en"),
            language=name,
            fields="\n".join(fields),
        )


def reading_schema(step: Step, ahead: list[Step], follow_up: bool) -> dict[str, Any]:
    """The JSON schema of a reading of `step`, derived from the flow."""
    properties: dict[str, Any] = {}
    if step.type not in FREE_TEXT_TYPES:
        properties["value"] = value_schema(step)
    if step.type in ESCO_KINDS:
        properties["terms"] = {
            "type": "array",
            "items": {"type": "string", "maxLength": MAX_TERM},
        }
    if ahead:
        later_values = {later.slot: value_schema(later) for later in ahead}
        properties["ahead"] = _object(later_values)
    if follow_up:
        properties["vague"] = {"type": "boolean"}
        properties["follow_up"] = {
            "type": ["string", "null"],
            "maxLength": MAX_FOLLOW_UP,
        }

    return _object(properties)


def value_schema(step: Step) -> dict[str, Any]:
    """The schema of one step's value, or null for "not said"."""
    if step.type == "multi_choice":
        items = {"type": "string", "enum": list(step.choice_values)}
        return {"type": ["array", "null"], "items": items}
    if step.type in CHOICE_TYPES:
        return {"type": ["string", "null"], "enum": [*step.choice_values, None]}
    if step.type == "yes_no":
        return {"type": ["boolean", "null"]}
    if step.type == "number":
        return {
            "type": ["integer", "null"],
            "minimum": step.minimum,
            "maximum": step.maximum,
        }
    if step.type == "month_year":
        return {"type": ["string", "null"], "pattern": "^[0-9]{4}(-[0-9]{2})?$"}

    return {"type": ["string", "null"], "maxLength": 1000}


def safe_follow_up(flow: Flow, follow_up: Any) -> str | None:
    """Return the model's follow-up if it may go to the client, else None.

    Refused: an empty or long text, anything like a link or a placeholder, and
    any word of a topic the flow excludes (never_ask_about in the flow).
    """
    if not isinstance(follow_up, str):
        return None
    cleaned = " ".join(follow_up.split())
    if not cleaned or len(cleaned) > MAX_FOLLOW_UP or UNSAFE_FOLLOW_UP.search(cleaned):
        logger.info("assistant: a follow-up was refused (form)")
        return None
    topic = excluded_topic(flow, cleaned)
    if topic:
        logger.info("assistant: a follow-up was refused (topic %s)", topic)
        return None

    return cleaned


def excluded_topic(flow: Flow, question: str) -> str | None:
    """Return the excluded topic that `question` touches, if any."""
    return find_topic(flow.never_ask_about, question)


def _terms(raw: list[Any]) -> tuple[str, ...]:
    terms = []
    for term in raw:
        if isinstance(term, str) and term.strip() and "<" not in term:
            terms.append(" ".join(term.split())[:MAX_TERM])

    return tuple(dict.fromkeys(terms))[:MAX_TERMS]


def _meaning(step: Step) -> str:
    """Describe a step's allowed values to the model, with their English labels."""
    if step.type in CHOICE_TYPES:
        options = "; ".join(
            f"{choice.value} = "
            + (choice.label if choice.literal else text(choice.label, "en"))
            for choice in step.choices
        )
        many = "a list of" if step.type == "multi_choice" else "one of"
        return f"{many}: {options}"
    if step.type == "yes_no":
        return "true or false"
    if step.type == "number":
        return f"a whole number from {step.minimum} to {step.maximum}"
    if step.type == "month_year":
        return "the month as YYYY-MM, or the year as YYYY"

    return "text"


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    """A closed object in which every property is required (strict mode)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
