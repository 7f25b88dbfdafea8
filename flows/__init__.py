"""The interview as data: flows, municipalities, services and rules from YAML files.

Counsellors own the files in this folder; `load_flows` reads and checks them all
when the app starts, and refuses a broken file with a message naming the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from flows.course import Course, load_course
from flows.model import Flow, FlowError, catalogue_keys, load_flow, load_municipalities
from flows.rules import RuleBook, load_rules, load_services
from flows.teams import Teams, load_teams
from translations import LANGUAGES, load_catalogue

FLOWS_DIR = Path(__file__).parent
INTERVIEW = "interview"
# The files in flows/ that are not flows themselves.
NOT_FLOWS = (
    "municipalities.yaml",
    "rules.yaml",
    "summary.yaml",
    "questions.yaml",
    "teams.yaml",
    "course.yaml",
    "whatsapp.yaml",
)


@dataclass(frozen=True)
class FlowSet:
    """Everything the dialogue needs from `flows/`, checked."""

    flows: dict[str, Flow]
    rules: RuleBook
    # Summary section -> the steps whose answers it shows (summary.yaml).
    summary: dict[str, tuple[str, ...]]
    # Topics of questions only a counsellor answers (questions.yaml).
    counsellor_only: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Who receives handoffs, and the reply time promised (teams.yaml).
    teams: Teams | None = None
    # The civic-orientation course (course.yaml); None where none is offered.
    course: Course | None = None

    @property
    def interview(self) -> Flow:
        return self.flows[INTERVIEW]


def load_flows(directory: Path = FLOWS_DIR, teams_file: Path | None = None) -> FlowSet:
    """Read and check every flow in `directory`; raise `FlowError` at a fault.

    The teams come from `teams_file` when given (TEAMS_FILE: the city's real
    addresses, kept outside the repository), else from the folder's teams.yaml.
    """
    municipalities = load_municipalities(directory / "municipalities.yaml")
    flows = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name in NOT_FLOWS:
            continue
        flow = load_flow(path, municipalities)
        check_texts(flow)
        flows[flow.name] = flow
    if INTERVIEW not in flows:
        raise FlowError(f"FLOW {directory}: no flow named {INTERVIEW!r} was found")
    services = load_services(directory / "services")
    rules = load_rules(directory / "rules.yaml", flows[INTERVIEW], services)
    summary = load_summary(directory / "summary.yaml", flows[INTERVIEW])
    counsellor_only = load_topics(directory / "questions.yaml", "counsellor_only")
    teams = load_teams(teams_file or directory / "teams.yaml", flows[INTERVIEW])
    course = load_course(directory / "course.yaml")

    return FlowSet(
        flows=flows,
        rules=rules,
        summary=summary,
        counsellor_only=counsellor_only,
        teams=teams,
        course=course,
    )


def load_topics(path: Path, key: str) -> dict[str, tuple[str, ...]]:
    """Read a mapping of topics to word lists; raise `FlowError` if malformed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    except yaml.YAMLError as exc:
        raise FlowError(f"QUESTIONS {path}: cannot be read as YAML: {exc}") from exc
    topics = (data or {}).get(key) or {}
    if not isinstance(topics, dict) or not all(
        isinstance(words, list) and words for words in topics.values()
    ):
        raise FlowError(f"QUESTIONS {path}: {key} maps each topic to a list of words")

    return {str(topic): tuple(map(str, words)) for topic, words in topics.items()}


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
