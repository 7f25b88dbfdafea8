"""`flask --app wsgi chat` and `flask --app wsgi flows check`: flows in a terminal.

Counsellors try a flow and see what it collects and suggests, without a phone,
a database or a worker; the same dialogue code answers as in production.
"""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from bot.channels import WEB
from bot.conversation import get_dialogue, respond
from bot.counsellor import (
    answers_for_counsellor,
    render_for_counsellor,
    translate_in_place,
)
from bot.models import Client, Conversation
from bot.summary import render_summary, summarise
from flows import FLOWS_DIR, engine, load_flows
from flows.model import Flow, FlowError
from translations import LANGUAGES_BY_CODE
from translations.translator import Translator, make_backend

flows_cli = AppGroup("flows", help="Check the flow files counsellors write.")


@flows_cli.command("check")
def check_flows() -> None:
    """Read and check every flow, rule and service; exit 1 on the first fault."""
    settings = current_app.config["POLKU"]
    directory = settings.flows_dir or FLOWS_DIR
    try:
        flows = load_flows(directory, settings.teams_file)
    except FlowError as exc:
        raise click.ClickException(str(exc)) from exc

    steps = sum(len(flow.steps) for flow in flows.flows.values())
    unchecked = sum(len(s.check) for s in flows.rules.services.values())
    click.echo(
        f"OK: {len(flows.flows)} flow(s), {steps} steps, {len(flows.rules.rules)} "
        f"rules, {len(flows.rules.services)} services in {directory}"
    )
    click.echo(f"{unchecked} facts about services are marked for the city to check.")
    if flows.teams is not None:
        unset = [team.id for team in flows.teams.teams.values() if team.unset]
        if unset:
            click.echo(
                f"{len(unset)} team(s) still have placeholder e-mail addresses "
                f"({', '.join(unset)}): handoffs go to instance/outbox/ until they "
                "are set, and SMTP_URL is refused."
            )


@click.command("chat")
@with_appcontext
@click.option("--language", help="Skip the language menu: fi, sv, en, uk, ...")
@click.option("--flow", "flow_name", help="Play one flow's questions only.")
def chat(language: str | None, flow_name: str | None) -> None:
    """Talk to Polku in the terminal; an empty line or Ctrl-D ends."""
    if language and language not in LANGUAGES_BY_CODE:
        codes = ", ".join(LANGUAGES_BY_CODE)
        raise click.BadParameter(f"{language!r} is not one of {codes}")
    dialogue = get_dialogue(current_app._get_current_object())  # type: ignore[attr-defined]
    if flow_name:
        _play_flow(dialogue.flows.flows, flow_name, language)
        return

    client = Client(id=0, channel=WEB, address="terminal", address_hash="terminal")
    conversation = Conversation(id=0, client_id=0, stage="new", state={})
    conversation.client = client
    say = _printer()
    say(respond(client, conversation, "hello", dialogue))
    if language:
        number = list(LANGUAGES_BY_CODE).index(language) + 1
        say(respond(client, conversation, str(number), dialogue))
    while conversation.stage != "done":
        body = _read()
        if body is None:
            return
        say(respond(client, conversation, body, dialogue))
    _show_outcome(conversation, dialogue.flows.interview)


def _play_flow(flows: dict, name: str, language: str | None) -> None:
    if name not in flows:
        raise click.BadParameter(f"no flow {name!r}; there are {', '.join(flows)}")
    flow, say = flows[name], _printer()
    state = engine.new_state(flow)
    say([engine.current_question(flow, state, language)])
    while state["status"] == engine.ACTIVE:
        body = _read()
        if body is None:
            return
        say(engine.answer(flow, state, body, language).replies)
    click.echo(json.dumps(state["slots"], ensure_ascii=False, indent=2))


def _printer():  # noqa: ANN202 - a small closure
    def say(replies: list[str]) -> None:
        for reply in replies:
            click.echo(
                click.style("polku> ", fg="blue") + reply.replace("\n", "\n       ")
            )

    return say


def _read() -> str | None:
    try:
        body = click.prompt(
            click.style("you", fg="green"), default="", show_default=False
        )
    except (EOFError, click.Abort):
        return None

    return body or None


def _show_outcome(conversation: Conversation, flow: Flow) -> None:
    """Print what a counsellor would get: the answers, suggestions and flags.

    Free text is translated into Finnish here and now, with the installed
    packages and no cache, as the worker would.
    """
    settings = current_app.config["POLKU"]
    backend = make_backend(
        settings.translator, settings.packages_dir, settings.instance_path
    )
    translate_in_place(conversation, Translator(backend), flow)
    state = conversation.state
    click.echo("\n--- for the counsellor ---")
    flows = get_dialogue(current_app._get_current_object()).flows  # type: ignore[attr-defined]
    click.echo(render_summary(summarise(flows, state)) + "\n")
    slots = state.get("interview", {}).get("slots", {})
    click.echo(json.dumps(slots, ensure_ascii=False, indent=2))
    click.echo(render_for_counsellor(answers_for_counsellor(flow, state["interview"])))
    for suggestion in state.get("outcome", {}).get("suggestions", []):
        names = ", ".join(suggestion["services"] + suggestion["flags"])
        click.echo(f"- {names}: {suggestion['because']}")
