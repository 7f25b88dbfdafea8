"""`flask --app wsgi handoffs` and `counsellors`: the operator's tools for cases
sent to counsellors (ids, references, teams, never client data: list them, send
a failed one again) and for the counsellors' accounts on the case page.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from bot.db import get_db
from bot.handoff import FAILED, PENDING, SENDING, SENT, handoffs
from bot.models import Handoff
from bot.queue import enqueue_handoff, get_queue


@click.group("handoffs", cls=AppGroup, invoke_without_command=True)
@click.pass_context
def handoffs_cli(context: click.Context) -> None:
    """List the cases handed to counsellors, or send a failed one again."""
    if context.invoked_subcommand is None:
        context.invoke(list_handoffs, status=None)


@handoffs_cli.command("list")
@click.option(
    "--status",
    type=click.Choice([PENDING, SENDING, SENT, FAILED]),
    help="Only handoffs in this state.",
)
@with_appcontext
def list_handoffs(status: str | None) -> None:
    """List handoffs, newest first."""
    rows = handoffs(get_db(), status)
    if not rows:
        click.echo("no handoffs" + (f" {status}" if status else ""))
        return
    click.echo(
        f"{'id':>6}  {'reference':<10} {'team':<14} {'reason':<17} {'status':<8} "
        f"{'tries':>5}  {'created (UTC)':<16}  last error"
    )
    for row in rows:
        created = row.created_at.strftime("%Y-%m-%d %H:%M")
        click.echo(
            f"{row.id:>6}  {row.reference:<10} {row.team:<14} {row.reason:<17} "
            f"{row.status:<8} {row.attempts:>5}  {created:<16}  {row.last_error or ''}"
        )
    counts = {s: sum(r.status == s for r in rows) for s in (PENDING, SENT, FAILED)}
    click.echo(", ".join(f"{count} {name}" for name, count in counts.items()))


@handoffs_cli.command("retry")
@click.argument("handoff_id", type=int)
@with_appcontext
def retry_handoff(handoff_id: int) -> None:
    """Queue a failed (or stuck) handoff's e-mail again."""
    db = get_db()
    with db.transaction() as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is None:
            raise click.ClickException(f"no handoff {handoff_id}")
        if handoff.status == SENT:
            raise click.ClickException(f"handoff {handoff_id} was sent already")
        if handoff.client_id is None:
            raise click.ClickException(
                f"handoff {handoff_id}: the client's data is gone"
            )
        handoff.status = PENDING
        client_id = handoff.client_id
    settings = current_app.config["POLKU"]
    if not enqueue_handoff(
        get_queue(), handoff_id, client_id, settings.handoff_retry_intervals, again=True
    ):
        raise click.ClickException("Redis is not reachable; the sweep will queue it")
    click.echo(f"handoff {handoff_id} queued again")


@click.group("counsellors", cls=AppGroup)
def counsellors_cli() -> None:
    """Manage the counsellors' accounts for the case page (COUNSELLORS_FILE)."""


@counsellors_cli.command("add")
@click.argument("username")
@click.option("--name", required=True, help="The name shown on the page.")
@click.option(
    "--team", "teams", multiple=True, required=True, help="A team from teams.yaml."
)
@click.password_option(help="At least 12 characters; asked for when not given.")
@with_appcontext
def add_counsellor(
    username: str, name: str, teams: tuple[str, ...], password: str
) -> None:
    """Add a counsellor, or set a new password and teams for one."""
    from bot.accounts import new_account, save_account
    from bot.conversation import get_dialogue

    known = get_dialogue(current_app).flows.teams
    unknown = [team for team in teams if known is None or team not in known.teams]
    if unknown:
        raise click.ClickException(f"no team {unknown[0]!r} in teams.yaml")
    try:
        account = new_account(username, name, list(teams), password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    path = current_app.config["POLKU"].accounts
    save_account(path, account)
    click.echo(f"counsellor {username} saved in {path}")


@counsellors_cli.command("list")
@with_appcontext
def list_counsellors() -> None:
    """List the accounts (never the password hashes)."""
    from bot.accounts import load_accounts

    accounts = load_accounts(current_app.config["POLKU"].accounts)
    if not accounts:
        click.echo("no counsellors; add one with `flask counsellors add`")
    for account in accounts.values():
        click.echo(f"{account.username}  {account.name}  {', '.join(account.teams)}")
