"""Flow files: checked at start-up with messages that name the file and the step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot import create_app
from bot.errors import ConfigError
from flows import FLOWS_DIR, load_flows
from flows.model import FlowError, load_flow

MINIMAL = {
    "flow": "interview",
    "start": "age",
    "steps": [
        {
            "id": "age",
            "question": "interview.age",
            "type": "number",
            "min": 15,
            "max": 99,
            "slot": "age",
            "next": [
                {"when": {"age": {"below": 30}}, "goto": "young"},
                {"goto": "end"},
            ],
        },
        {
            "id": "young",
            "question": "interview.situation",
            "type": "choice",
            "slot": "situation",
            "choices": [{"value": "student", "label": "interview.situation.student"}],
            "next": "end",
        },
    ],
}


def write_flow(tmp_path: Path, change) -> Path:  # noqa: ANN001 - a test's lambda
    document = yaml.safe_load(yaml.safe_dump(MINIMAL))
    change(document)
    path = tmp_path / "interview.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))

    return path


def test_minimal_flow_loads(tmp_path):
    flow = load_flow(write_flow(tmp_path, lambda d: None))

    assert list(flow.steps) == ["age", "young"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["steps"][1].update(next="edu"),
            'step "young" goes to unknown step "edu"; add that step',
        ),
        (
            lambda d: d["steps"][0].update(next="end"),
            'step "young" cannot be reached from "age"',
        ),
        (
            lambda d: d["steps"][0].update(type="essay"),
            "step \"age\" has type 'essay'; use one of",
        ),
        (
            lambda d: d["steps"][1].update(next="age"),
            'step "age" leads back to itself (age -> young -> age)',
        ),
        (
            lambda d: d["steps"][0]["next"].pop(),
            "step \"age\" has no default in 'next'",
        ),
        (
            lambda d: d["steps"][0].update(
                next=[{"when": {"salary": 5}, "goto": "young"}, {"goto": "end"}]
            ),
            "on slot 'salary', which no step fills",
        ),
        (
            lambda d: d["steps"][0].update(
                next=[
                    {"when": {"situation": "studnet"}, "goto": "young"},
                    {"goto": "end"},
                ]
            ),
            "with value 'studnet'; it can be one of ['student']",
        ),
        (
            lambda d: d["steps"][0].pop("max"),
            "step \"age\" is a number step; give it 'min' and 'max'",
        ),
        (
            lambda d: d["steps"].append(dict(d["steps"][1])),
            'step "young" is defined twice',
        ),
        (
            lambda d: d["steps"][1].pop("choices"),
            "step \"young\" is a choice step without 'choices'",
        ),
        (
            lambda d: d["steps"][0].update(colour="red"),
            "step \"age\" has unknown keys ['colour']",
        ),
    ],
    ids=[
        "unknown-next",
        "unreachable",
        "bad-type",
        "loop",
        "no-default",
        "unknown-slot",
        "unknown-value",
        "missing-bound",
        "duplicate",
        "no-choices",
        "unknown-key",
    ],
)
def test_broken_flow_is_refused_with_file_step_and_fix(tmp_path, change, message):
    path = write_flow(tmp_path, change)

    with pytest.raises(FlowError) as error:
        load_flow(path)

    assert str(error.value).startswith(f"FLOW {path}:")
    assert message in str(error.value)


@pytest.fixture
def flows_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "flows"
    shutil.copytree(
        FLOWS_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    return copy


def test_missing_catalogue_text_is_named_with_the_step(flows_copy):
    path = flows_copy / "interview.yaml"
    path.write_text(path.read_text().replace("interview.age\n", "interview.agee\n"))

    with pytest.raises(FlowError, match="step \"age\" uses text 'interview.agee'"):
        load_flows(flows_copy)


def test_rule_suggesting_an_unknown_service_is_refused(flows_copy):
    path = flows_copy / "rules.yaml"
    path.write_text(path.read_text().replace("suggest: ohjaamo", "suggest: ohjamo", 1))

    with pytest.raises(FlowError, match="suggests unknown service 'ohjamo'"):
        load_flows(flows_copy)


def test_rule_reason_with_unknown_slot_is_refused(flows_copy):
    path = flows_copy / "rules.yaml"
    path.write_text(path.read_text().replace("ikä {age}", "ikä {ika}", 1))

    with pytest.raises(FlowError, match=r"writes \{ika\} in its reason"):
        load_flows(flows_copy)


def test_app_refuses_to_start_on_a_broken_flow(flows_copy, tmp_path):
    path = flows_copy / "interview.yaml"
    path.write_text(path.read_text().replace("next: situation\n", "next: situaton\n"))

    with pytest.raises(ConfigError, match='step "age" goes to unknown step "situaton"'):
        create_app({"environ": {}, "instance_path": tmp_path, "flows_dir": flows_copy})


def test_shipped_flows_are_valid():
    flows = load_flows()

    assert "interview" in flows.flows
    assert flows.rules.rules and flows.rules.services


@pytest.mark.parametrize("partial", [True, False])
def test_only_a_partial_language_may_lack_a_flow_text(monkeypatch, partial):
    import flows
    from translations import LANGUAGES, Language

    extra = Language("xx", "Xx", "Test language", partial=partial)
    monkeypatch.setattr(flows, "LANGUAGES", (*LANGUAGES, extra))

    if partial:
        assert load_flows().interview
    else:
        with pytest.raises(FlowError, match="catalogues of xx lack"):
            load_flows()
