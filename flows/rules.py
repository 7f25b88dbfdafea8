"""Counsellors' rules of thumb: interview answers in, suggested services and flags out.

Rules only suggest; they never decide about benefits or obligations. Each match
carries a plain-language reason for the counsellor, filled in with the client's
answers ("ikä 24, ei ammatillista tutkintoa").
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from flows.conditions import Condition, parse_condition
from flows.model import Flow, FlowError

SERVICE_KEYS = frozenset(
    {"id", "name", "for", "keywords", "contact", "municipalities", "check"}
)


@dataclass(frozen=True)
class Service:
    """A local service a counsellor may suggest; `check` lists unverified facts."""

    id: str
    name: dict[str, str]
    audience: dict[str, str]
    contact: dict[str, str]
    municipalities: tuple[str, ...]
    check: tuple[str, ...]
    # Words a client might ask with, per language, for answering questions.
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    id: str
    when: Condition
    services: tuple[str, ...]
    flags: tuple[str, ...]
    because: str


@dataclass(frozen=True)
class Suggestion:
    """One rule that matched, with its reason written out for the counsellor."""

    rule: str
    services: tuple[str, ...]
    flags: tuple[str, ...]
    because: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "services": list(self.services),
            "flags": list(self.flags),
            "because": self.because,
        }


@dataclass(frozen=True)
class RuleBook:
    rules: tuple[Rule, ...]
    services: dict[str, Service]
    flag_labels: dict[str, str]

    def suggest(
        self, slots: dict[str, Any], today: date | None = None
    ) -> list[Suggestion]:
        """Return the suggestions of every rule that holds for `slots`."""
        return [
            Suggestion(rule.id, rule.services, rule.flags, _reason(rule, slots))
            for rule in self.rules
            if rule.when.holds(slots, today)
        ]


def load_services(directory: Path) -> dict[str, Service]:
    """Read one service per YAML file in `directory`."""
    services = {}
    for path in sorted(directory.glob("*.yaml")):
        raw = _read(path)
        if not isinstance(raw, dict) or not {"id", "name", "for"} <= set(raw):
            raise FlowError(f"SERVICE {path}: needs at least id, name and for")
        unknown = set(raw) - SERVICE_KEYS
        if unknown:
            raise FlowError(f"SERVICE {path}: unknown keys {sorted(unknown)}")
        service = Service(
            id=str(raw["id"]),
            name=_texts(path, raw["name"], "name"),
            audience=_texts(path, raw["for"], "for"),
            contact={str(k): str(v) for k, v in (raw.get("contact") or {}).items()},
            municipalities=tuple(map(str, raw.get("municipalities") or ())),
            check=tuple(map(str, raw.get("check") or ())),
            keywords=_keywords(path, raw.get("keywords")),
        )
        if service.id in services:
            raise FlowError(f"SERVICE {path}: id {service.id!r} is used twice")
        services[service.id] = service

    return services


def _keywords(path: Path, raw: Any) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise FlowError(f"SERVICE {path}: keywords maps a language to a list of words")

    return {str(code): tuple(map(str, words)) for code, words in raw.items()}


def load_rules(path: Path, flow: Flow, services: dict[str, Service]) -> RuleBook:
    """Read the rules in `path` and check them against `flow` and `services`."""
    raw = _read(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("rules"), list):
        raise FlowError(f"RULES {path}: expected 'rules', a list")
    labels = {str(k): str(v) for k, v in (raw.get("flags") or {}).items()}

    rules = []
    for item in raw["rules"]:
        rule = _parse_rule(path, item)
        _check_rule(path, rule, flow, services, labels)
        rules.append(rule)
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids):
        raise FlowError(f"RULES {path}: a rule id is used twice in {ids}")

    return RuleBook(rules=tuple(rules), services=services, flag_labels=labels)


def _parse_rule(path: Path, item: Any) -> Rule:
    if not isinstance(item, dict) or not item.get("id"):
        raise FlowError(f"RULES {path}: every rule needs an id; found {item!r:.60}")
    rule_id = str(item["id"])
    for key in ("when", "because"):
        if not item.get(key):
            raise FlowError(f'RULES {path}: rule "{rule_id}" has no {key!r}')
    try:
        condition = parse_condition(item["when"])
    except ValueError as exc:
        raise FlowError(f'RULES {path}: rule "{rule_id}": {exc}') from exc
    services = tuple(map(str, _as_list(item.get("suggest"))))
    flags = tuple(map(str, _as_list(item.get("flag"))))
    if not services and not flags:
        raise FlowError(
            f'RULES {path}: rule "{rule_id}" suggests nothing and flags nothing'
        )

    return Rule(rule_id, condition, services, flags, str(item["because"]))


def _check_rule(
    path: Path,
    rule: Rule,
    flow: Flow,
    services: dict[str, Service],
    labels: dict[str, str],
) -> None:
    problem = rule.when.problem(flow.slots)
    if problem:
        raise FlowError(f'RULES {path}: rule "{rule.id}" has a condition {problem}')
    for service in rule.services:
        if service not in services:
            raise FlowError(
                f'RULES {path}: rule "{rule.id}" suggests unknown service {service!r}; '
                f"add flows/services/{service}.yaml or correct the name"
            )
    for flag in rule.flags:
        if flag not in labels:
            raise FlowError(
                f'RULES {path}: rule "{rule.id}" sets flag {flag!r}, which has no '
                "label under 'flags'"
            )
    fields = [name for _, name, _, _ in string.Formatter().parse(rule.because) if name]
    unknown = [name for name in fields if name not in flow.slots]
    if unknown:
        raise FlowError(
            f'RULES {path}: rule "{rule.id}" writes {{{unknown[0]}}} in its reason, '
            "which is no slot of the interview"
        )


def _reason(rule: Rule, slots: dict[str, Any]) -> str:
    values = {key: _shown(value) for key, value in slots.items()}

    return string.Formatter().vformat(rule.because, (), _Missing(values))


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "kyllä" if value else "ei"
    if isinstance(value, list):
        return ", ".join(map(str, value))

    return str(value)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []

    return value if isinstance(value, list) else [value]


def _texts(path: Path, raw: Any, key: str) -> dict[str, str]:
    if isinstance(raw, str):
        return {"fi": raw}
    if not isinstance(raw, dict) or "fi" not in raw:
        raise FlowError(f"SERVICE {path}: {key!r} needs at least a Finnish text (fi)")

    return {str(k): str(v) for k, v in raw.items()}


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FlowError(f"{path}: cannot be read as YAML: {exc}") from exc
