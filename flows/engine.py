"""The flow engine: ask a step's question, read the answer, fill the slot, move on.

The conversation hands it the client's text after commands and language; the
engine keeps its whole state in a plain dict (stored with the conversation), so
a client can stop for a week and continue where they were.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from flows.answers import (
    AnswerError,
    check_value,
    looks_like_question,
    parse_answer,
    parse_selection,
)
from flows.model import CHOICE_TYPES, END, FREE_TEXT_TYPES, Flow, Step
from translations import text

logger = logging.getLogger(__name__)

# Re-asks before a step is skipped and left for the counsellor.
MAX_REASKS = 3
ACTIVE, FINISHED, HANDED_OFF = "active", "finished", "handed_off"
# Steps whose answers are mapped to ESCO, and the kind of concept they name.
ESCO_KINDS = {"occupation": "occupation", "skills": "skill"}
# What became of a step's ESCO mapping (state["esco"][slot]["status"]).
CONFIRMED, REJECTED, NO_MATCH, UNAVAILABLE = (
    "confirmed",
    "rejected",
    "no_match",
    "unavailable",
)


class Vocabulary(Protocol):
    """ESCO as the engine sees it (bot/vocabulary.py): JSON-ready items with
    `uri`, `code`, `label` (for the client), `label_fi` and `score`."""

    @property
    def available(self) -> bool: ...

    def match(
        self, text: str, language: str | None, kind: str, terms: tuple[str, ...] = ()
    ) -> list[dict]: ...

    def suggest_skills(
        self, occupations: list[str], language: str | None
    ) -> list[dict]: ...


@dataclass(frozen=True)
class Reading:
    """What a language model read from one answer (bot/assistant.py).

    The engine checks every value against the flow before it keeps it.
    """

    # This step's value, for an answer the rules could not read.
    value: Any = None
    # What an occupation or skills answer names, in English, for ESCO.
    terms: tuple[str, ...] = ()
    # Values of later `read_ahead` steps that the client already gave.
    ahead: dict[str, Any] = field(default_factory=dict)
    # One question for a vague answer, in the client's language.
    follow_up: str | None = None


class Assistant(Protocol):
    """The language model as the engine sees it; None in deterministic mode."""

    def read(
        self,
        flow: Flow,
        step: Step,
        answer: str,
        language: str | None,
        *,
        state: dict[str, Any],
        follow_up: bool,
    ) -> Reading | None: ...


@dataclass
class Outcome:
    """What one turn produced: replies, and whether the interview just ended."""

    replies: list[str] = field(default_factory=list)
    ended: bool = False


def new_state(flow: Flow) -> dict[str, Any]:
    return {
        "flow": flow.name,
        "step": flow.start,
        "status": ACTIVE,
        "slots": {},
        "path": [],
        "skipped": [],
        "tries": 0,
    }


def question(flow: Flow, step_id: str, language: str | None) -> str:
    """Return the text that asks step `step_id`, with its numbered options."""
    step = flow.steps[step_id]
    lines = [text(step.question, language)]
    if step.type in CHOICE_TYPES:
        for number, choice in enumerate(step.choices, start=1):
            label = choice.label if choice.literal else text(choice.label, language)
            lines.append(f"{number} {label}")
    elif step.type == "yes_no":
        lines.append(f"1 {text('common.yes', language)}")
        lines.append(f"2 {text('common.no', language)}")

    return "\n".join(lines)


def current_question(flow: Flow, state: dict[str, Any], language: str | None) -> str:
    """Return the current step's question, or the ESCO list it waits on."""
    offer = state.get("offer")
    if offer and offer["step"] == state["step"]:
        return _offer_text(flow, offer, language)
    pending = state.get("follow_up")
    if pending and pending["step"] == state["step"]:
        return pending["text"]

    return question(flow, state["step"], language)


def _offer_text(flow: Flow, offer: dict[str, Any], language: str | None) -> str:
    numbered = [f"{n} {item['label']}" for n, item in enumerate(offer["items"], 1)]
    if offer["source"] == "suggested":
        lines = [question(flow, offer["step"], language)]
        lines.append(text("esco.suggest_skills", language))
    else:
        key = (
            "esco.confirm_occupations"
            if offer["kind"] == "occupation"
            else "esco.confirm_skills"
        )
        lines = [text(key, language)]

    return "\n".join([*lines, *numbered, f"0 {text('esco.none', language)}"])


def answer(
    flow: Flow,
    state: dict[str, Any],
    reply: str,
    language: str | None,
    *,
    today: date | None = None,
    vocabulary: Vocabulary | None = None,
    assistant: Assistant | None = None,
) -> Outcome:
    """Take the client's `reply` to the current step and return what to say next.

    An occupation or skills answer is matched to ESCO with `vocabulary`, and
    the client confirms the matches by number before the interview goes on.
    With an `assistant` (a language model), an answer the rules cannot read is
    read by the model, a vague free-text answer may get one follow-up, and
    values the client gave early fill later steps; every value is checked
    against the flow first.
    """
    step = flow.steps[state["step"]]
    offer = state.get("offer")
    if offer and offer["step"] == step.id:
        try:
            picks = parse_selection(reply, len(offer["items"]))
        except AnswerError as problem:
            return _reask(flow, state, step, problem, language, today, vocabulary)
        if picks is not None:
            _confirm(state, step, offer, picks)
            if not picks and offer["source"] == "suggested":
                # None of the usual skills: ask for theirs in their own words.
                return Outcome([question(flow, step.id, language)])
            return _move_on(flow, state, step, language, today, vocabulary)
        # Words, not numbers: a new answer in the client's own words.
        state.pop("offer")
    pending = state.pop("follow_up", None)
    if pending and pending["step"] == step.id and state["slots"].get(step.slot):
        # The answer to a follow-up completes the first answer.
        reply = f"{state['slots'][step.slot]}; {reply}"

    reading = None
    try:
        value = parse_answer(step, reply, language)
    except AnswerError as problem:
        reading = _read(assistant, flow, step, reply, language, state, False)
        value = _checked(step, reading.value if reading else None)
        if value is None:
            return _reask(flow, state, step, problem, language, today, vocabulary)
        _mark_read(state, step.slot, by_model=True)
    else:
        _mark_read(state, step.slot, by_model=False)
        if step.type in FREE_TEXT_TYPES:
            more = _follow_ups_left(state, step) > 0
            reading = _read(assistant, flow, step, reply, language, state, more)

    state["slots"][step.slot] = value
    if step.type in FREE_TEXT_TYPES:
        # The language it was written in, for translating it for the counsellor.
        state.setdefault("languages", {})[step.slot] = language
    logger.debug("flow %s: step %s answered", flow.name, step.id)
    if reading is not None:
        _keep_ahead(flow, state, step, reading.ahead)
        if reading.follow_up and _follow_ups_left(state, step) > 0:
            asked = state.setdefault("follow_ups", {})
            asked[step.id] = asked.get(step.id, 0) + 1
            state["follow_up"] = {"step": step.id, "text": reading.follow_up}
            logger.info("flow %s: step %s follow-up asked", flow.name, step.id)
            return Outcome([reading.follow_up])
    terms = reading.terms if reading is not None else ()
    if step.type in ESCO_KINDS and _offer_matches(
        state, step, value, language, vocabulary, terms
    ):
        return Outcome([current_question(flow, state, language)])

    return _move_on(flow, state, step, language, today, vocabulary)


def is_question(
    flow: Flow, state: dict[str, Any], reply: str, language: str | None
) -> bool:
    """True when `reply` asks something instead of answering the current step.

    A message ending in a question mark is a question unless it reads as an
    answer to a step of numbers or choices ("41?").
    """
    if not looks_like_question(reply):
        return False
    step = flow.steps[state["step"]]
    if step.type in FREE_TEXT_TYPES or state.get("offer"):
        return True
    try:
        parse_answer(step, reply, language)
    except AnswerError:
        return True

    return False


def _read(
    assistant: Assistant | None,
    flow: Flow,
    step: Step,
    reply: str,
    language: str | None,
    state: dict[str, Any],
    follow_up: bool,
) -> Reading | None:
    if assistant is None:
        return None

    return assistant.read(flow, step, reply, language, state=state, follow_up=follow_up)


def _checked(step: Step, value: Any) -> Any:
    """Return a model's `value` for `step` if the flow allows it, else None."""
    if value is None:
        return None
    try:
        return check_value(step, value)
    except AnswerError:
        logger.info("flow: step %s: the model's value is not allowed", step.id)
        return None


def _mark_read(state: dict[str, Any], slot: str, *, by_model: bool) -> None:
    """Remember which answers a language model read, for the counsellor."""
    read = [name for name in state.get("read_by_model", []) if name != slot]
    if by_model:
        read.append(slot)
    state["read_by_model"] = read


def _follow_ups_left(state: dict[str, Any], step: Step) -> int:
    return step.follow_ups - state.get("follow_ups", {}).get(step.id, 0)


def _keep_ahead(
    flow: Flow, state: dict[str, Any], step: Step, values: dict[str, Any]
) -> None:
    """Keep what the client already told about later steps, if the flow allows."""
    slots = flow.slots
    for slot, value in values.items():
        target = slots.get(slot)
        if target is None or not target.read_ahead or target.id == step.id:
            continue
        if slot in state["slots"]:
            continue
        checked = _checked(target, value)
        if checked is not None:
            state.setdefault("ahead", {})[slot] = checked


def _offer_matches(
    state: dict[str, Any],
    step: Step,
    value: str,
    language: str | None,
    vocabulary: Vocabulary | None,
    terms: tuple[str, ...] = (),
) -> bool:
    """Offer the ESCO concepts that match `value`; False if there are none."""
    mappings = state.setdefault("esco", {})
    if vocabulary is None or not vocabulary.available:
        mappings[step.slot] = {"status": UNAVAILABLE, "items": []}
        return False
    kind = ESCO_KINDS[step.type]
    items = vocabulary.match(value, language, kind, terms)
    if not items:
        mappings[step.slot] = {"status": NO_MATCH, "items": []}
        return False
    state["offer"] = {
        "step": step.id, "slot": step.slot, "kind": kind, "source": "matched",
        "items": items,
    }  # fmt: skip

    return True


def _confirm(
    state: dict[str, Any], step: Step, offer: dict[str, Any], picks: list[int]
) -> None:
    """Keep the ESCO concepts the client picked from `offer`."""
    chosen = [offer["items"][i] for i in picks]
    state["esco"] = {
        **state.get("esco", {}),
        step.slot: {
            "status": CONFIRMED if chosen else REJECTED,
            "items": chosen,
            "offered": len(offer["items"]),
        },
    }
    if offer["source"] == "suggested" and chosen:
        # Picked from a list, not written: the labels stand for the answer.
        state["slots"][step.slot] = "; ".join(item["label"] for item in chosen)
        state.setdefault("languages", {})[step.slot] = None
    state.pop("offer", None)
    logger.debug(
        "flow: step %s ESCO picks %d of %d", step.id, len(chosen), len(offer["items"])
    )


def go_back(flow: Flow, state: dict[str, Any], language: str | None) -> Outcome:
    """Return to the previous question; its old answer is asked again."""
    state.pop("offer", None)
    state.pop("follow_up", None)
    if state["path"]:
        leaving = flow.steps[state["step"]]
        _forget(state, leaving)
        state["step"] = state["path"].pop()
        target = flow.steps[state["step"]]
        _forget(state, target)
        if target.id in state["skipped"]:
            state["skipped"].remove(target.id)
    state["tries"] = 0

    return Outcome([current_question(flow, state, language)])


def _forget(state: dict[str, Any], step: Step) -> None:
    """Drop a step's answer and everything derived from it."""
    state["slots"].pop(step.slot, None)
    state.get("esco", {}).pop(step.slot, None)
    state.get("ahead", {}).pop(step.slot, None)
    state.get("follow_ups", {}).pop(step.id, None)
    _mark_read(state, step.slot, by_model=False)


def restart(flow: Flow, state: dict[str, Any], language: str | None) -> Outcome:
    """Forget every answer and ask the first question again."""
    state.clear()
    state.update(new_state(flow))

    return Outcome(
        [text("flow.restarted", language), question(flow, flow.start, language)]
    )


def hand_off(state: dict[str, Any], language: str | None) -> Outcome:
    """End the interview because the client asked for a person."""
    state["status"] = HANDED_OFF

    return Outcome([text("flow.human", language)], ended=True)


def _reask(
    flow: Flow,
    state: dict[str, Any],
    step: Step,
    problem: AnswerError,
    language: str | None,
    today: date | None,
    vocabulary: Vocabulary | None = None,
) -> Outcome:
    if state["tries"] < MAX_REASKS:
        state["tries"] += 1
        key = step.reask or problem.key
        reask = text(key, language, **problem.values)
        return Outcome([f"{reask}\n{current_question(flow, state, language)}"])

    # The client could not answer: leave it to the counsellor and go on.
    state["skipped"].append(step.id)
    state.pop("offer", None)
    logger.info("flow %s: step %s skipped after re-asks", flow.name, step.id)
    outcome = _move_on(flow, state, step, language, today, vocabulary)
    outcome.replies.insert(0, text("flow.skipped", language))

    return outcome


def _move_on(
    flow: Flow,
    state: dict[str, Any],
    step: Step,
    language: str | None,
    today: date | None,
    vocabulary: Vocabulary | None = None,
) -> Outcome:
    state["path"].append(step.id)
    state["tries"] = 0
    target = next_step(step, state["slots"], today)
    ahead = state.get("ahead", {})
    while target != END and flow.steps[target].slot in ahead:
        # Already told earlier, in the client's own words: not asked again.
        known = flow.steps[target]
        state["slots"][known.slot] = ahead.pop(known.slot)
        _mark_read(state, known.slot, by_model=True)
        state["path"].append(known.id)
        logger.info("flow %s: step %s filled from earlier", flow.name, known.id)
        target = next_step(known, state["slots"], today)
    if target == END:
        state["status"] = FINISHED
        state["step"] = None
        return Outcome([text("flow.finished", language)], ended=True)

    state["step"] = target
    if flow.steps[target].type == "skills":
        _suggest_skills(state, flow.steps[target], language, vocabulary)

    return Outcome([current_question(flow, state, language)])


def _suggest_skills(
    state: dict[str, Any],
    step: Step,
    language: str | None,
    vocabulary: Vocabulary | None,
) -> None:
    """Offer the essential skills of the occupations the client confirmed."""
    occupations = [
        item["uri"]
        for mapping in state.get("esco", {}).values()
        if mapping.get("status") == CONFIRMED
        for item in mapping["items"]
        if "/occupation/" in item["uri"]
    ]
    if vocabulary is None or not vocabulary.available or not occupations:
        return
    items = vocabulary.suggest_skills(occupations, language)
    if items:
        state["offer"] = {
            "step": step.id, "slot": step.slot, "kind": "skill",
            "source": "suggested", "items": items,
        }  # fmt: skip


def next_step(step: Step, slots: dict[str, Any], today: date | None = None) -> str:
    """Return where `step` leads with these `slots`: the first transition that holds."""
    for transition in step.transitions:
        if transition.when is None or transition.when.holds(slots, today):
            return transition.goto

    return END


def count_questions(flow: Flow) -> int:
    """Return about how many questions a client answers: between the shortest
    and the longest way through the flow."""
    shortest: dict[str, int] = {}
    longest: dict[str, int] = {}

    def walk(step_id: str, pick: Any, memo: dict[str, int]) -> int:
        if step_id == END:
            return 0
        if step_id not in memo:
            targets = flow.steps[step_id].targets()
            memo[step_id] = 1 + pick(walk(target, pick, memo) for target in targets)
        return memo[step_id]

    low, high = walk(flow.start, min, shortest), walk(flow.start, max, longest)

    return (low + high + 1) // 2
