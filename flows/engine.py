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

from flows.answers import AnswerError, parse_answer, parse_selection
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

    def match(self, text: str, language: str | None, kind: str) -> list[dict]: ...

    def suggest_skills(
        self, occupations: list[str], language: str | None
    ) -> list[dict]: ...


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
) -> Outcome:
    """Take the client's `reply` to the current step and return what to say next.

    An occupation or skills answer is matched to ESCO with `vocabulary`, and
    the client confirms the matches by number before the interview goes on.
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
    try:
        value = parse_answer(step, reply, language)
    except AnswerError as problem:
        return _reask(flow, state, step, problem, language, today, vocabulary)

    state["slots"][step.slot] = value
    if step.type in FREE_TEXT_TYPES:
        # The language it was written in, for translating it for the counsellor.
        state.setdefault("languages", {})[step.slot] = language
    logger.debug("flow %s: step %s answered", flow.name, step.id)
    if step.type in ESCO_KINDS and _offer_matches(
        state, step, value, language, vocabulary
    ):
        return Outcome([current_question(flow, state, language)])

    return _move_on(flow, state, step, language, today, vocabulary)


def _offer_matches(
    state: dict[str, Any],
    step: Step,
    value: str,
    language: str | None,
    vocabulary: Vocabulary | None,
) -> bool:
    """Offer the ESCO concepts that match `value`; False if there are none."""
    mappings = state.setdefault("esco", {})
    if vocabulary is None or not vocabulary.available:
        mappings[step.slot] = {"status": UNAVAILABLE, "items": []}
        return False
    kind = ESCO_KINDS[step.type]
    items = vocabulary.match(value, language, kind)
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
    if state["path"]:
        leaving = flow.steps[state["step"]]
        state["slots"].pop(leaving.slot, None)
        state.get("esco", {}).pop(leaving.slot, None)
        state["step"] = state["path"].pop()
        target = flow.steps[state["step"]]
        state["slots"].pop(target.slot, None)
        state.get("esco", {}).pop(target.slot, None)
        if target.id in state["skipped"]:
            state["skipped"].remove(target.id)
    state["tries"] = 0

    return Outcome([current_question(flow, state, language)])


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
