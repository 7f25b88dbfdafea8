"""The interview as data: flows, municipalities, services and rules from YAML files.

Counsellors own the files in this folder; `load_flows` reads and checks them all
when the app starts, and refuses a broken file with a message naming the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from flows.model import Flow, FlowError, catalogue_keys, load_flow, load_municipalities
from flows.rules import RuleBook, load_rules, load_services
from translations import LANGUAGES, load_catalogue

FLOWS_DIR = Path(__file__).parent
INTERVIEW = "interview"


@dataclass(frozen=True)
class FlowSet:
    """Everything the dialogue needs from `flows/`, checked."""

    flows: dict[str, Flow]
    rules: RuleBook
    # Summary section -> the steps whose answers it shows (summary.yaml).
    summary: dict[str, tuple[str, ...]]

    @property
    def interview(self) -> Flow:
        return self.flows[INTERVIEW]


def load_flows(directory: Path = FLOWS_DIR) -> FlowSet:
    """Read and check every flow in `directory`; raise `FlowError` at a fault."""
    municipalities = load_municipalities(directory / "municipalities.yaml")
    flows = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name in ("municipalities.yaml", "rules.yaml", "summary.yaml"):
            continue
        flow = load_flow(path, municipalities)
        check_texts(flow)
        flows[flow.name] = flow
    if INTERVIEW not in flows:
        raise FlowError(f"FLOW {directory}: no flow named {INTERVIEW!r} was found")
    services = load_services(directory / "services")
    rules = load_rules(directory / "rules.yaml", flows[INTERVIEW], services)
    summary = load_summary(directory / "summary.yaml", flows[INTERVIEW])

    return FlowSet(flows=flows, rules=rules, summary=summary)


SUMMARY_SECTIONS = ("situation", "strengths", "goals", "obstacles")


def load_summary(path: Path, flow: Flow) -> dict[str, tuple[str, ...]]:
    """Read the summary's sections; raise `FlowError` for an unknown step."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    sections = (data or {}).get("sections") or {}
    seen: set[str] = set()
    for section, steps in sections.items():
        if section not in SUMMARY_SECTIONS:
            raise FlowError(
                f"SUMMARY {path}: section {section!r} is not one of "
                f"{', '.join(SUMMARY_SECTIONS)}"
            )
        for step in steps or []:
            if step not in flow.steps:
                message = f"{section} lists unknown step {step!r}"
                raise FlowError(f"SUMMARY {path}: {message}")
            if step in seen:
                raise FlowError(f"SUMMARY {path}: step {step!r} is in two sections")
            seen.add(step)

    return {section: tuple(sections.get(section) or ()) for section in SUMMARY_SECTIONS}


def check_texts(flow: Flow) -> None:
    """Raise `FlowError` if a text the flow uses is missing from a catalogue."""
    for key, steps in sorted(catalogue_keys(flow).items()):
        # A partial language may lack texts: its clients get English for them.
        missing = [
            language.code
            for language in LANGUAGES
            if not language.partial and key not in load_catalogue(language.code)
        ]
        if missing:
            raise FlowError(
                f'FLOW {flow.path}: step "{sorted(steps)[0]}" uses text {key!r}, '
                f"which the catalogues of {', '.join(missing)} lack; add it to "
                "translations/<language>/LC_MESSAGES/messages.po"
            )
