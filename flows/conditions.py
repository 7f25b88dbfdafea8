"""Conditions on slots, shared by a flow's branching and the counsellors' rules.

Written in YAML as a mapping from slot to a value or to operators:
`{situation: student}`, `{age: {below: 30}}`, `{finnish_level: {below: A2}}`,
`{arrival_year: {years_ago_below: 3}}`, `{target_jobs: {mentions: [yrittäjä]}}`,
combined with `all`, `any` and `not`.
A slot the client has not answered satisfies nothing but `answered: false`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flows.model import Step

LEVEL_ORDER = ("none", "A1", "A2", "B1", "B2", "C1", "native")
COMPARISONS = {
    "below": lambda value, limit: value < limit,
    "at_most": lambda value, limit: value <= limit,
    "above": lambda value, limit: value > limit,
    "at_least": lambda value, limit: value >= limit,
}
AGE_OPERATORS = {
    "years_ago_below",
    "years_ago_at_least",
    "months_ago_below",
    "months_ago_at_least",
}
OPERATORS = {"is", "in", "not_in", "contains", "mentions", "answered"}
OPERATORS |= set(COMPARISONS)
OPERATORS |= AGE_OPERATORS
COMBINERS = ("all", "any", "not")


@dataclass(frozen=True)
class Test:
    """One operator applied to one slot."""

    slot: str
    operator: str
    argument: Any

    def holds(self, slots: Mapping[str, Any], today: date) -> bool:
        value = slots.get(self.slot)
        if self.operator == "answered":
            return (value is not None) == bool(self.argument)
        if value is None:
            return False
        if self.operator == "is":
            return value == self.argument
        if self.operator == "in":
            return value in self.argument
        if self.operator == "not_in":
            return value not in self.argument
        if self.operator == "contains":
            return isinstance(value, list) and self.argument in value
        if self.operator == "mentions":
            written = str(value).casefold()
            return any(str(word).casefold() in written for word in self.argument)
        if self.operator in AGE_OPERATORS:
            return _age_holds(self.operator, value, self.argument, today)

        return _compare(self.operator, value, self.argument)

    def problem(self, steps: Mapping[str, Step]) -> str | None:
        step = steps.get(self.slot)
        if step is None:
            return f"on slot {self.slot!r}, which no step fills"
        allowed = _allowed_values(step)
        if allowed is None:
            return None
        wrong = [value for value in _mentioned_values(self) if value not in allowed]
        if wrong:
            return (
                f"on {self.slot!r} with value {wrong[0]!r}; "
                f"it can be one of {sorted(map(str, allowed))}"
            )

        return None


@dataclass(frozen=True)
class Condition:
    """All tests hold, or a combination of nested conditions."""

    tests: tuple[Test, ...] = ()
    combiner: str = "all"
    parts: tuple[Condition, ...] = ()

    def holds(self, slots: Mapping[str, Any], today: date | None = None) -> bool:
        today = today or date.today()
        results = [test.holds(slots, today) for test in self.tests]
        results += [part.holds(slots, today) for part in self.parts]
        if self.combiner == "any":
            return any(results)
        if self.combiner == "not":
            return not all(results)

        return all(results)

    def problem(self, steps: Mapping[str, Step]) -> str | None:
        for test in self.tests:
            problem = test.problem(steps)
            if problem:
                return problem
        for part in self.parts:
            problem = part.problem(steps)
            if problem:
                return problem

        return None


def parse_condition(raw: Any) -> Condition:
    """Read a condition from YAML; raise ValueError saying what is wrong."""
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"expected a mapping like {{slot: value}}, got {raw!r:.60}")

    tests: list[Test] = []
    parts: list[Condition] = []
    for key, value in raw.items():
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise ValueError(f"'{key}' needs a list of conditions")
            nested = tuple(parse_condition(item) for item in value)
            parts.append(Condition(combiner=key, parts=nested))
        elif key == "not":
            parts.append(Condition(combiner="not", parts=(parse_condition(value),)))
        elif isinstance(value, dict):
            tests.extend(_parse_tests(str(key), value))
        else:
            tests.append(Test(str(key), "is", value))

    return Condition(tests=tuple(tests), parts=tuple(parts))


def _parse_tests(slot: str, operators: dict[str, Any]) -> list[Test]:
    tests = []
    for operator, argument in operators.items():
        if operator not in OPERATORS:
            raise ValueError(
                f"unknown operator {operator!r} on {slot!r}; "
                f"use one of {', '.join(sorted(OPERATORS))}"
            )
        if operator in ("in", "not_in", "mentions") and not isinstance(argument, list):
            raise ValueError(f"'{operator}' on {slot!r} needs a list")
        if operator in AGE_OPERATORS and not isinstance(argument, int):
            raise ValueError(f"'{operator}' on {slot!r} needs a whole number")
        tests.append(Test(slot, operator, argument))

    return tests


def _mentioned_values(test: Test) -> list[Any]:
    if test.operator in ("is", "contains"):
        return [test.argument]
    if test.operator in ("in", "not_in"):
        return list(test.argument)

    return []


def _allowed_values(step: Step) -> set[Any] | None:
    if step.choices:
        return set(step.choice_values)
    if step.type == "yes_no":
        return {True, False}

    return None


def _level(value: Any) -> Any:
    return LEVEL_ORDER.index(value) if value in LEVEL_ORDER else value


def _compare(operator: str, value: Any, limit: Any) -> bool:
    value, limit = _level(value), _level(limit)
    try:
        return bool(COMPARISONS[operator](value, limit))
    except TypeError:
        return False


def _age_holds(operator: str, value: Any, limit: int, today: date) -> bool:
    """Compare how long ago a year (2023) or a month ("2023-05") was."""
    try:
        if isinstance(value, int):
            elapsed, unit = today.year - value, "years"
        else:
            # A month written as "2024-05", or only a year: count from mid-year.
            parts = [int(part) for part in str(value).split("-")[:2]]
            year, month = parts[0], parts[1] if len(parts) > 1 else 7
            months = (today.year - year) * 12 + today.month - month
            elapsed, unit = (months, "months")
    except ValueError:
        return False
    if not operator.startswith(unit):
        elapsed = elapsed // 12 if unit == "months" else elapsed * 12

    return elapsed < limit if operator.endswith("below") else elapsed >= limit
