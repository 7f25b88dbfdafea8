"""The flow engine: ask a step's question, read the answer, fill the slot, move on.

The conversation hands it the client's text after commands and language; the
engine keeps its whole state in a plain dict (stored with the conversation), so
a client can stop for a week and continue where they were.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flows.answers import AnswerError, parse_answer
from flows.model import CHOICE_TYPES, END, FREE_TEXT_TYPES, Flow, Step
from translations import text

logger = logging.getLogger(__name__)

# Re-asks before a step is skipped and left for the counsellor.
MAX_REASKS = 3
ACTIVE, FINISHED, HANDED_OFF = "active", "finished", "handed_off"


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
    return question(flow, state["step"], language)


def answer(
    flow: Flow,
    state: dict[str, Any],
    reply: str,
    language: str | None,
    *,
    today: date | None = None,
) -> Outcome:
    """Take the client's `reply` to the current step and return what to say next."""
    step = flow.steps[state["step"]]
    try:
        value = parse_answer(step, reply, language)
    except AnswerError as problem:
        return _reask(flow, state, step, problem, language, today)

    state["slots"][step.slot] = value
    if step.type in FREE_TEXT_TYPES:
        # The language it was written in, for translating it for the counsellor.
        state.setdefault("languages", {})[step.slot] = language
    logger.debug("flow %s: step %s answered", flow.name, step.id)

    return _move_on(flow, state, step, language, today)


def go_back(flow: Flow, state: dict[str, Any], language: str | None) -> Outcome:
    """Return to the previous question; its old answer is asked again."""
    if state["path"]:
        leaving = flow.steps[state["step"]]
        state["slots"].pop(leaving.slot, None)
        state["step"] = state["path"].pop()
        target = flow.steps[state["step"]]
        state["slots"].pop(target.slot, None)
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
) -> Outcome:
    if state["tries"] < MAX_REASKS:
        state["tries"] += 1
        key = step.reask or problem.key
        reask = text(key, language, **problem.values)
        return Outcome([f"{reask}\n{current_question(flow, state, language)}"])

    # The client could not answer: leave it to the counsellor and go on.
    state["skipped"].append(step.id)
    logger.info("flow %s: step %s skipped after re-asks", flow.name, step.id)
    outcome = _move_on(flow, state, step, language, today)
    outcome.replies.insert(0, text("flow.skipped", language))

    return outcome


def _move_on(
    flow: Flow,
    state: dict[str, Any],
    step: Step,
    language: str | None,
    today: date | None,
) -> Outcome:
    state["path"].append(step.id)
    state["tries"] = 0
    target = next_step(step, state["slots"], today)
    if target == END:
        state["status"] = FINISHED
        state["step"] = None
        return Outcome([text("flow.finished", language)], ended=True)

    state["step"] = target

    return Outcome([question(flow, target, language)])


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
