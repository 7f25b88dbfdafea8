"""`flask --app wsgi course ...`: groups, enrolment, progress and the lesson run.

For the course's teachers and the operator; the counsellor page does the same
for a signed-in teacher. Prints pseudonymous references, never phone numbers.
"""

from __future__ import annotations

import datetime as dt
import logging

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from bot.channels import get_channels, get_templates
from bot.conversation import get_dialogue
from bot.course import (
    ACTIVE,
    LEFT,
    PAUSED,
    CourseError,
    create_group,
    enrol_number,
    find_group,
    progress,
    progress_csv,
    set_status,
    write_due,
)
from bot.db import get_db
from bot.messaging import queue_outbound
from bot.models import Client, CourseGroup, Enrolment
from bot.queue import get_queue

logger = logging.getLogger(__name__)

course_cli = AppGroup(
    "course", help="The civic-orientation course: groups and lessons."
)
groups_cli = AppGroup("groups", help="Course groups and their schedules.")
course_cli.add_command(groups_cli)


def _app():  # noqa: ANN202 - Flask's proxy type
    return current_app._get_current_object()  # type: ignore[attr-defined]


def _course():  # noqa: ANN202
    course = get_dialogue(_app()).flows.course
    if course is None:
        raise click.ClickException(
            "no course is configured: flows/course.yaml is missing"
        )
    return course


@groups_cli.command("add")
@click.argument("code")
@click.option(
    "--name", default="", help="What participants see, e.g. 'Mikkeli, spring'."
)
@click.option("--team", required=True, help="The teachers' team in teams.yaml.")
@click.option("--teacher-email", required=True, help="Where questions are e-mailed.")
@click.option("--days", required=True, help="Session weekdays, e.g. tue,thu.")
@click.option("--time", "time_", required=True, help="Session start, e.g. 17:00.")
@click.option("--start", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--timezone", default="Europe/Helsinki", show_default=True)
def groups_add(
    code: str,
    name: str,
    team: str,
    teacher_email: str,
    days: str,
    time_: str,
    start: dt.datetime,
    timezone: str,
) -> None:
    """Add a group whose sessions begin on START."""
    _course()
    teams = get_dialogue(_app()).flows.teams
    try:
        with get_db().transaction() as session:
            group = create_group(
                session,
                code=code,
                name=name,
                team=team,
                teacher_email=teacher_email,
                days=days,
                time=time_,
                start=start.date(),
                timezone=timezone,
                teams=list(teams.teams) if teams else (),
            )
            shown = (group.code, group.days, group.session_time)
    except CourseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"group {shown[0]}: sessions on {shown[1]} at {shown[2]}")


@groups_cli.command("list")
def groups_list() -> None:
    """List the groups, their schedules and how many take part."""
    with get_db().session() as session:
        for group in session.scalars(select(CourseGroup).order_by(CourseGroup.id)):
            count = len(
                list(
                    session.scalars(
                        select(Enrolment.id).where(
                            Enrolment.group_id == group.id,
                            Enrolment.status.in_((ACTIVE, PAUSED)),
                        )
                    )
                )
            )
            click.echo(
                f"{group.code}\t{group.name}\t{group.team}\t{group.days} "
                f"{group.session_time}\tfrom {group.start_date}\t{count} taking part"
            )


@course_cli.command("enrol")
@click.argument("code")
@click.option("--channel", type=click.Choice(["sms", "whatsapp"]), required=True)
@click.option("--number", required=True, help="The phone number, like +358401234567.")
@click.option("--language", required=True, help="The participant's language code.")
@click.option("--label", default=None, help="What the teacher calls them (optional).")
def enrol_command(
    code: str, channel: str, number: str, language: str, label: str | None
) -> None:
    """Enrol a participant in group CODE and send their welcome."""
    app = _app()
    settings = app.config["POLKU"]
    db = get_db()
    try:
        with db.transaction() as session:
            group = find_group(session, code)
            if group is None:
                raise CourseError(f"no open group {code}")
            enrolment, message_ids = enrol_number(
                session,
                secret_key=settings.secret_key,
                channel=channel,
                number=number,
                language=language,
                group=group,
                dialogue=get_dialogue(app),
                channels=get_channels(app),
                templates=get_templates(app),
                by="cli",
                label=label,
            )
            reference = session.get(Client, enrolment.client_id).reference
    except CourseError as exc:
        raise click.ClickException(str(exc)) from exc
    queue_outbound(db, get_queue(app), message_ids, settings.retry_intervals)
    click.echo(f"enrolled {reference} in {code.upper()}; welcome queued")


def _set(code: str, reference: str, status: str) -> None:
    with get_db().transaction() as session:
        query = (
            select(Enrolment)
            .join(Client, Client.id == Enrolment.client_id)
            .join(CourseGroup, CourseGroup.id == Enrolment.group_id)
            .where(Client.reference == reference, CourseGroup.code == code.upper())
        )
        enrolment = session.scalars(query).first()
        if enrolment is None:
            raise click.ClickException(f"{reference} is not in group {code}")
        set_status(session, enrolment, status)
    click.echo(f"{reference} in {code.upper()}: {status}")


@course_cli.command("pause")
@click.argument("code")
@click.argument("reference")
def pause_command(code: str, reference: str) -> None:
    """Pause a participant's lessons (the participant can also write PAUSE)."""
    _set(code, reference, PAUSED)


@course_cli.command("resume")
@click.argument("code")
@click.argument("reference")
def resume_command(code: str, reference: str) -> None:
    """Resume a participant's lessons from the next session on."""
    _set(code, reference, ACTIVE)


@course_cli.command("remove")
@click.argument("code")
@click.argument("reference")
def remove_command(code: str, reference: str) -> None:
    """Take a participant out of the group: no more lessons."""
    _set(code, reference, LEFT)


@course_cli.command("progress")
@click.argument("code")
@click.option("--csv", "as_csv", is_flag=True, help="CSV, as on the counsellor page.")
def progress_command(code: str, as_csv: bool) -> None:
    """Show each participant's lessons, quiz results and questions."""
    course = _course()
    with get_db().session() as session:
        group = find_group(session, code)
        if group is None:
            raise click.ClickException(f"no open group {code}")
        rows = progress(session, group, course)
    if as_csv:
        click.echo(progress_csv(rows, course), nl=False)
        return
    for row in rows:
        sent = sum(1 for item in row.lessons.values() if item.prompt)
        right, answered = row.quiz_score
        click.echo(
            f"{row.reference}\t{row.language}\t{row.channel}\t{row.status}\t"
            f"{sent} lessons\tquiz {right}/{answered}\t{row.questions} questions"
        )


@course_cli.command("send-due")
@click.option("--at", default=None, help="As if it were this time (ISO 8601).")
def send_due_command(at: str | None) -> None:
    """Write and queue the lesson messages that have fallen due (the scheduler
    does this every two minutes)."""
    app = _app()
    settings = app.config["POLKU"]
    now = dt.datetime.fromisoformat(at) if at else None
    if now is not None and now.tzinfo is None:
        raise click.ClickException("give --at with its time zone, e.g. +02:00")
    db = get_db()
    written = write_due(db, _course(), get_channels(app), get_templates(app), now)
    queue_outbound(db, get_queue(app), written.message_ids, settings.retry_intervals)
    click.echo(
        f"{written.sent} sent, {written.templates} as templates, {written.held} "
        f"held, {written.missed} missed, {written.finished} finished"
    )


@course_cli.command("check")
def check_command() -> None:
    """List the lesson texts with facts the city must check before a course."""
    from flows.course import course_text

    course = _course()
    for lesson in course.lessons:
        marked = [(part, "local") for part in lesson.check_locally]
        marked += [(part, "changes with the law") for part in lesson.check_current]
        for part, why in marked:
            key = next(
                k
                for k in lesson.keys()
                if k == lesson.key(part) or k.startswith(lesson.key(part) + ".")
            )
            click.echo(f"{lesson.key(part)} ({why}): {course_text(key, 'fi')}")
