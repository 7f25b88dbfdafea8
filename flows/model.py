"""Flow definitions: the YAML that counsellors write, read and checked.

`load_flow` turns a file into a `Flow` or raises `FlowError` naming the file, the
step and what to change. The engine (flows/engine.py) only ever runs checked flows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from flows.conditions import LEVEL_ORDER, Condition, parse_condition

END = "end"
CHOICE_TYPES = frozenset({"choice", "multi_choice", "municipality", "language_level"})
ANSWER_TYPES = CHOICE_TYPES | {
    "yes_no",
    "number",
    "date",
    "month_year",
    "text",
    "occupation",
    "skills",
}
# Answers in the client's own words: translated for the counsellor.
FREE_TEXT_TYPES = frozenset({"text", "occupation", "skills"})
STEP_KEYS = frozenset(
    {
        "id", "question", "type", "slot", "choices", "min", "max", "next", "reask",
        "follow_ups", "read_ahead",
    }
)  # fmt: skip
# Steps whose value a language model may read from an earlier answer.
READ_AHEAD_TYPES = CHOICE_TYPES | {"yes_no", "number", "month_year"}
# A step may allow at most this many follow-up questions from the model.
MAX_FOLLOW_UPS = 2
# Language skill levels, in order; the labels are catalogue texts level.<value>.
LEVELS = LEVEL_ORDER
OTHER_MUNICIPALITY = "interview.municipality.other"


class FlowError(ValueError):
    """A flow file cannot run; the message names the file, the step and the fix."""


@dataclass(frozen=True)
class Choice:
    """One option of a step: its stored value and its label.

    The label is a catalogue key, or with `literal` a name shown as it is
    (a municipality); `aliases` are other words that choose it.
    """

    value: str
    label: str
    literal: bool = False
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transition:
    """Go to `goto` when `when` holds (always, when `when` is None)."""

    goto: str
    when: Condition | None = None


@dataclass(frozen=True)
class Step:
    id: str
    question: str
    type: str
    slot: str
    choices: tuple[Choice, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    reask: str | None = None
    transitions: tuple[Transition, ...] = ()
    # How many follow-ups the language model may ask on a vague answer.
    follow_ups: int = 0
    # Whether the model may fill this step from what the client said earlier.
    read_ahead: bool = False

    @property
    def choice_values(self) -> tuple[str, ...]:
        return tuple(choice.value for choice in self.choices)

    def targets(self) -> list[str]:
        return [transition.goto for transition in self.transitions]


@dataclass(frozen=True)
class Flow:
    name: str
    path: Path
    start: str
    steps: dict[str, Step] = field(default_factory=dict)
    # Topics no follow-up may touch, each with words that betray it.
    never_ask_about: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def slots(self) -> dict[str, Step]:
        return {step.slot: step for step in self.steps.values()}


def load_flow(path: Path, municipalities: Iterable[Choice] = ()) -> Flow:
    """Read and check the flow in `path`; raise `FlowError` if it cannot run.

    Steps of type `municipality` get `municipalities` as their choices.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FlowError(f"FLOW {path}: cannot be read as YAML: {exc}") from exc
    if not isinstance(document, dict) or "steps" not in document:
        raise FlowError(f"FLOW {path}: expected a mapping of flow, start and steps")

    name = str(document.get("flow") or path.stem)
    steps: dict[str, Step] = {}
    for raw in document["steps"] or []:
        step = _parse_step(path, raw, tuple(municipalities))
        if step.id in steps:
            raise FlowError(f'FLOW {path}: step "{step.id}" is defined twice')
        steps[step.id] = step
    start = str(document.get("start") or next(iter(steps), ""))
    flow = Flow(
        name=name,
        path=path,
        start=start,
        steps=steps,
        never_ask_about=_parse_topics(path, document.get("never_ask_about")),
    )
    _check_graph(flow)
    _check_conditions(flow)

    return flow


def _parse_step(path: Path, raw: Any, municipalities: tuple[Choice, ...]) -> Step:
    if not isinstance(raw, dict) or not raw.get("id"):
        raise FlowError(f"FLOW {path}: every step needs an 'id'; found {raw!r:.80}")
    step_id = str(raw["id"])

    def fail(problem: str) -> FlowError:
        return FlowError(f'FLOW {path}: step "{step_id}" {problem}')

    unknown = set(raw) - STEP_KEYS
    if unknown:
        raise fail(f"has unknown keys {sorted(unknown)}; allowed: {sorted(STEP_KEYS)}")
    kind = raw.get("type")
    if kind not in ANSWER_TYPES:
        raise fail(f"has type {kind!r}; use one of {', '.join(sorted(ANSWER_TYPES))}")
    for key in ("question", "slot", "next"):
        if raw.get(key) in (None, ""):
            raise fail(f"has no '{key}'")

    choices = tuple(_parse_choices(raw.get("choices"), fail))
    if kind == "municipality":
        choices = municipalities
    elif kind == "language_level":
        choices = tuple(Choice(level, f"level.{level}") for level in LEVELS)
    elif kind in CHOICE_TYPES and not choices:
        raise fail(f"is a {kind} step without 'choices'")
    minimum, maximum = _bound(raw.get("min"), fail), _bound(raw.get("max"), fail)
    if kind == "number" and (minimum is None or maximum is None or minimum > maximum):
        raise fail("is a number step; give it 'min' and 'max' with min <= max")

    follow_ups = raw.get("follow_ups", 0)
    if (
        isinstance(follow_ups, bool)
        or not isinstance(follow_ups, int)
        or not 0 <= follow_ups <= MAX_FOLLOW_UPS
    ):
        raise fail(f"has follow_ups {follow_ups!r}; use 0 to {MAX_FOLLOW_UPS}")
    if follow_ups and kind not in FREE_TEXT_TYPES:
        raise fail("has follow_ups; only answers in the client's own words get them")
    read_ahead = raw.get("read_ahead", False)
    if not isinstance(read_ahead, bool):
        raise fail(f"has read_ahead {read_ahead!r}; use true or false")
    if read_ahead and kind not in READ_AHEAD_TYPES:
        raise fail(f"is a {kind} step; read_ahead is for choices, numbers and dates")

    return Step(
        id=step_id,
        question=str(raw["question"]),
        type=kind,
        slot=str(raw["slot"]),
        choices=choices,
        minimum=minimum,
        maximum=maximum,
        reask=raw.get("reask"),
        transitions=_parse_next(raw["next"], fail),
        follow_ups=follow_ups,
        read_ahead=read_ahead,
    )


def _parse_topics(path: Path, raw: Any) -> dict[str, tuple[str, ...]]:
    """Read `never_ask_about`: each topic with the words that show it."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(words, list) and words for words in raw.values()
    ):
        raise FlowError(
            f"FLOW {path}: never_ask_about maps each topic to a list of words"
        )

    return {str(topic): tuple(map(str, words)) for topic, words in raw.items()}


def _parse_choices(raw: Any, fail: Callable[[str], FlowError]) -> list[Choice]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise fail("has 'choices' that are not a list")
    choices = []
    for item in raw:
        if not isinstance(item, dict) or "value" not in item or "label" not in item:
            raise fail(f"has a choice without 'value' and 'label': {item!r:.60}")
        aliases = item.get("aliases") or []
        if not isinstance(aliases, list):
            raise fail(f"has a choice whose 'aliases' is not a list: {item!r:.60}")
        choices.append(
            Choice(
                str(item["value"]), str(item["label"]), aliases=tuple(map(str, aliases))
            )
        )
    values = [choice.value for choice in choices]
    if len(set(values)) != len(values):
        raise fail(f"has the same choice value twice: {values}")

    return choices


def _bound(raw: Any, fail: Callable[[str], FlowError]) -> int | None:
    """Read a number bound; `this_year` stands for the current year."""
    if raw is None:
        return None
    if raw == "this_year":
        return date.today().year
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise fail(f"has a bound {raw!r} that is not a whole number or this_year")

    return raw


def _parse_next(raw: Any, fail: Callable[[str], FlowError]) -> tuple[Transition, ...]:
    if isinstance(raw, str):
        return (Transition(raw),)
    if not isinstance(raw, list) or not raw:
        raise fail("has 'next' that is neither a step id nor a list of goto/when")

    transitions = []
    for item in raw:
        if not isinstance(item, dict) or not item.get("goto"):
            raise fail(f"has a 'next' entry without 'goto': {item!r:.60}")
        when = item.get("when")
        try:
            condition = parse_condition(when) if when is not None else None
        except ValueError as exc:
            raise fail(f"has a condition that cannot be read: {exc}") from exc
        transitions.append(Transition(str(item["goto"]), condition))
    if transitions[-1].when is not None:
        raise fail("has no default in 'next'; end the list with a goto without when")

    return tuple(transitions)


def _check_graph(flow: Flow) -> None:
    if flow.start not in flow.steps:
        raise FlowError(f'FLOW {flow.path}: start step "{flow.start}" does not exist')
    for step in flow.steps.values():
        for target in step.targets():
            if target != END and target not in flow.steps:
                raise FlowError(
                    f'FLOW {flow.path}: step "{step.id}" goes to unknown step '
                    f'"{target}"; add that step, correct the name, or use "end"'
                )

    seen, waiting = set(), [flow.start]
    while waiting:
        current = waiting.pop()
        if current in seen or current == END:
            continue
        seen.add(current)
        waiting.extend(flow.steps[current].targets())
    _check_no_loops(flow)
    unreachable = [step for step in flow.steps if step not in seen]
    if unreachable:
        raise FlowError(
            f'FLOW {flow.path}: step "{unreachable[0]}" cannot be reached from '
            f'"{flow.start}"; point a next of another step at it, or remove it'
        )


def _check_no_loops(flow: Flow) -> None:
    """Raise if a step can lead back to itself: an interview must always end."""
    done: set[str] = set()

    def visit(step_id: str, trail: tuple[str, ...]) -> None:
        if step_id == END or step_id in done:
            return
        if step_id in trail:
            raise FlowError(
                f'FLOW {flow.path}: step "{step_id}" leads back to itself '
                f"({' -> '.join((*trail[trail.index(step_id) :], step_id))}); "
                "a flow may not loop"
            )
        for target in flow.steps[step_id].targets():
            visit(target, (*trail, step_id))
        done.add(step_id)

    visit(flow.start, ())


def _check_conditions(flow: Flow) -> None:
    slots = flow.slots
    for step in flow.steps.values():
        for transition in step.transitions:
            if transition.when is None:
                continue
            problem = transition.when.problem(slots)
            if problem:
                raise FlowError(
                    f'FLOW {flow.path}: step "{step.id}" has a condition {problem}'
                )


def load_municipalities(path: Path) -> tuple[Choice, ...]:
    """Read the municipalities of the area, and add "another municipality"."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries = document["municipalities"]
        choices = [
            Choice(
                value=str(entry["id"]),
                label=str(entry["names"][0]),
                literal=True,
                aliases=tuple(map(str, [*entry["names"], *entry.get("forms", [])])),
            )
            for entry in entries
        ]
    except (OSError, yaml.YAMLError, KeyError, TypeError, IndexError) as exc:
        raise FlowError(
            f"MUNICIPALITIES {path}: expected 'municipalities' with an id and names "
            f"for each: {exc}"
        ) from exc

    return (*choices, Choice("other", OTHER_MUNICIPALITY))


def catalogue_keys(flow: Flow) -> dict[str, set[str]]:
    """Return every catalogue key the flow uses, with the steps that use it."""
    keys: dict[str, set[str]] = {}
    for step in flow.steps.values():
        labels = [choice.label for choice in step.choices if not choice.literal]
        used = [step.question, *labels]
        if step.reask:
            used.append(step.reask)
        for key in used:
            keys.setdefault(key, set()).add(step.id)

    return keys
