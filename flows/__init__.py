"""The interview as data: flows, municipalities, services and rules from YAML files.

Counsellors own the files in this folder; `load_flows` reads and checks them all
when the app starts, and refuses a broken file with a message naming the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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

    @property
    def interview(self) -> Flow:
        return self.flows[INTERVIEW]


def load_flows(directory: Path = FLOWS_DIR) -> FlowSet:
    """Read and check every flow in `directory`; raise `FlowError` at a fault."""
    municipalities = load_municipalities(directory / "municipalities.yaml")
    flows = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name in ("municipalities.yaml", "rules.yaml"):
            continue
        flow = load_flow(path, municipalities)
        check_texts(flow)
        flows[flow.name] = flow
    if INTERVIEW not in flows:
        raise FlowError(f"FLOW {directory}: no flow named {INTERVIEW!r} was found")
    services = load_services(directory / "services")
    rules = load_rules(directory / "rules.yaml", flows[INTERVIEW], services)

    return FlowSet(flows=flows, rules=rules)


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
