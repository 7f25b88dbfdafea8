"""The course teachers' pages, beside the counsellors' cases: groups, progress
(and its CSV), enrolment by phone number, and the participants' questions.

Same sign-in, session limits and CSRF as bot/casepage.py; a teacher sees the
groups of their teams only. Opening a question and exporting progress are
audited; neither shows a phone number.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from bot import audit
from bot.accounts import Account
from bot.casepage import REPLY_LIMIT, _csrf_token, login_required
from bot.casepage import _t as page_text
from bot.channels import get_channels, get_templates
from bot.conversation import get_dialogue
from bot.counsellor import locked_conversation
from bot.course import (
    ANSWERED,
    CourseError,
    enrol_number,
    progress,
    progress_csv,
)
from bot.course_questions import load, pending_questions
from bot.db import get_db
from bot.messaging import hold_counsellor_reply, queue_outbound
from bot.models import Client, CourseGroup, CourseQuestion, Enrolment, utcnow
from bot.queue import enqueue_reply, get_queue
from bot.segments import MAX_BODY_CHARS
from translations import LANGUAGES, counsellor_text

logger = logging.getLogger(__name__)

bp = Blueprint("coursepage", __name__, url_prefix="/counsellor/course")


def _c(key: str, **values: Any) -> str:
    return counsellor_text(f"counsellor.course.{key}", **values)


def _t(key: str, **values: Any) -> str:
    # The course's own texts, and the case page's for the shared frame.
    if key.startswith("course."):
        return _c(key.removeprefix("course."), **values)
    return page_text(key, **values)


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"

    return response


def _course() -> Any:
    course = get_dialogue(current_app).flows.course
    if course is None:
        abort(404, "no course is configured")
    return course


def _group(session: Any, code: str, account: Account) -> CourseGroup:
    group = session.scalars(
        select(CourseGroup).where(CourseGroup.code == code.upper())
    ).first()
    # Another team's group looks the same as no group at all.
    if group is None or group.team not in account.teams:
        abort(404, "no such group in your teams")

    return group


@bp.get("/")
@login_required
def groups(account: Account) -> str:
    _course()
    with get_db().session() as session:
        rows = list(
            session.scalars(
                select(CourseGroup)
                .where(CourseGroup.team.in_(account.teams))
                .order_by(CourseGroup.start_date.desc())
            )
        )
        questions = pending_questions(session, [group.id for group in rows])

    return render_template(
        "counsellor/course_groups.html",
        t=_t,
        account=account,
        rows=rows,
        questions=questions,
        csrf=_csrf_token(),
    )


@bp.get("/groups/<code>")
@login_required
def group(account: Account, code: str) -> str:
    course = _course()
    with get_db().session() as session:
        found = _group(session, code, account)
        rows = progress(session, found, course)
        questions = pending_questions(session, [found.id])

    return render_template(
        "counsellor/course_group.html",
        t=_t,
        account=account,
        group=found,
        course=course,
        rows=rows,
        questions=questions,
        languages=LANGUAGES,
        notice=request.args.get("enrolled"),
        csrf=_csrf_token(),
    )


@bp.get("/groups/<code>/progress.csv")
@login_required
def group_csv(account: Account, code: str) -> Response:
    course = _course()
    with get_db().transaction() as session:
        found = _group(session, code, account)
        rows = progress(session, found, course)
        audit.record(
            session,
            actor=account.username,
            action=audit.EXPORT,
            subject=f"group {found.code}",
            record_class="lesson_progress",
            reason=f"progress of course group {found.code} exported as CSV",
        )
    filename = f"polku-{found.code.lower()}-progress.csv"

    return Response(
        progress_csv(rows, course),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )


@bp.post("/groups/<code>/enrol")
@login_required
def enrol(account: Account, code: str) -> Response:
    _course()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = app.config["POLKU"]
    db = get_db()
    try:
        with db.transaction() as session:
            found = _group(session, code, account)
            enrolment, message_ids = enrol_number(
                session,
                secret_key=settings.secret_key,
                channel=request.form.get("channel", ""),
                number=request.form.get("number", ""),
                language=request.form.get("language", ""),
                group=found,
                dialogue=get_dialogue(app),
                channels=get_channels(app),
                templates=get_templates(app),
                by=account.username,
                label=request.form.get("label") or None,
            )
            reference = session.get(Client, enrolment.client_id).reference
    except CourseError as exc:
        abort(400, str(exc))
    queue_outbound(db, get_queue(), message_ids, settings.retry_intervals)

    return redirect(url_for("coursepage.group", code=code.upper(), enrolled=reference))


def _question(session: Any, reference: str, account: Account) -> CourseQuestion:
    question = session.scalars(
        select(CourseQuestion).where(CourseQuestion.reference == reference.upper())
    ).first()
    enrolment = session.get(Enrolment, question.enrolment_id) if question else None
    group = session.get(CourseGroup, enrolment.group_id) if enrolment else None
    if question is None or group is None or group.team not in account.teams:
        abort(404, "no such question in your teams")

    return question


@bp.get("/questions/<reference>")
@login_required
def question(account: Account, reference: str) -> str:
    with get_db().transaction() as session:
        found = _question(session, reference, account)
        view = load(session, found.id)
        if view is None:
            abort(410, "the participant's data has been deleted")
        audit.record(
            session,
            actor=account.username,
            action=audit.CASE_VIEW,
            subject=view.client.reference,
            record_class="lesson_progress, message",
            reason=f"course question {found.reference} opened by the teacher",
        )
        answered = (found.answered_by, found.answered_at)

    return render_template(
        "counsellor/course_question.html",
        t=_t,
        account=account,
        view=view,
        answered=answered,
        csrf=_csrf_token(),
        limit=REPLY_LIMIT,
    )


@bp.post("/questions/<reference>/reply")
@login_required
def reply(account: Account, reference: str) -> Response:
    """Hold the teacher's Finnish answer for the worker to translate and send."""
    finnish = request.form.get("text", "").replace("\r\n", "\n").strip()
    if not finnish:
        abort(400, "write the answer first")
    if len(finnish) > min(REPLY_LIMIT, MAX_BODY_CHARS):
        abort(413, f"an answer can have at most {REPLY_LIMIT} characters")
    with get_db().transaction() as session:
        found = _question(session, reference, account)
        view = load(session, found.id)
        if view is None or view.conversation is None:
            abort(410, "the participant's data has been deleted")
        client = view.client
        if client.opted_out or client.erasing_at is not None:
            abort(409, "the participant has stopped messages from Polku")
        conversation = locked_conversation(session, view.conversation.id)
        message = hold_counsellor_reply(session, client, conversation, finnish)
        found.status = ANSWERED
        found.answered_at = utcnow()
        found.answered_by = account.username
        audit.record(
            session,
            actor=account.username,
            action=audit.CASE_REPLY,
            subject=client.reference,
            record_class="message",
            reason=f"teacher answered course question {found.reference}",
        )
        message_id, client_id = message.id, client.id
    settings = current_app.config["POLKU"]
    enqueue_reply(get_queue(), message_id, client_id, settings.retry_intervals)
    logger.info("message %s: teacher's answer held for translation", message_id)

    return redirect(url_for("coursepage.question", reference=reference.upper()))
