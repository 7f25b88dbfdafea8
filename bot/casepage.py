"""The counsellors' case page: log in, open a case by its reference, see the
client's contact details and own words, mark the case taken, reply in Finnish.

Every opening of a case is an audit entry. Sessions end after
COUNSELLOR_SESSION_MINUTES without a request; forms carry a CSRF token.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select
from werkzeug.wrappers import Response

from bot import audit
from bot.accounts import Account, authenticate, load_accounts
from bot.conversation import get_dialogue
from bot.counsellor import locked_conversation
from bot.db import get_db
from bot.handoff import case_view, route
from bot.messaging import COUNSELLOR, OUTBOUND, hold_counsellor_reply
from bot.models import Client, Conversation, Handoff, Message, utcnow
from bot.queue import enqueue_reply, get_queue
from bot.segments import MAX_BODY_CHARS
from translations import counsellor_text

logger = logging.getLogger(__name__)

bp = Blueprint("casepage", __name__, url_prefix="/counsellor")

SESSION_KEY = "counsellor"
REPLY_LIMIT = 1000


def _t(key: str, **values: Any) -> str:
    return counsellor_text(f"counsellor.page.{key}", **values)


def _accounts() -> dict[str, Account]:
    return load_accounts(current_app.config["POLKU"].accounts)


def _signed_in() -> Account | None:
    """Return the counsellor of this session, ending it when it has idled out."""
    data = session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return None
    limit = current_app.config["POLKU"].counsellor_session_minutes * 60
    if time.time() - float(data.get("seen", 0)) > limit:
        session.pop(SESSION_KEY, None)
        return None
    account = _accounts().get(str(data.get("user")))
    if account is None:
        session.pop(SESSION_KEY, None)
        return None
    session[SESSION_KEY] = {**data, "seen": time.time()}

    return account


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        account = _signed_in()
        if account is None:
            return redirect(url_for("casepage.login", next=request.path))
        if request.method == "POST":
            _check_csrf()
        return view(account, *args, **kwargs)

    return wrapped


def _csrf_token() -> str:
    data = session.get(SESSION_KEY) or {}
    return str(data.get("csrf", ""))


def _check_csrf() -> None:
    sent = request.form.get("csrf", "")
    if not sent or not hmac.compare_digest(sent, _csrf_token()):
        abort(400, "the form has expired; open the page again")


@bp.after_request
def _no_store(response: Response) -> Response:
    # Personal data: never kept in a browser's or a proxy's cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"

    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip().lower()
        password = request.form.get("password", "")
        redis = get_queue().connection
        account = authenticate(_accounts(), redis, username, password)
        if account is not None:
            session[SESSION_KEY] = {
                "user": account.username,
                "seen": time.time(),
                "csrf": secrets.token_urlsafe(24),
            }
            logger.info("counsellor page: %s signed in", account.username)
            target = request.args.get("next", "")
            if not target.startswith("/counsellor/"):
                target = url_for("casepage.cases")
            return redirect(target)
        error = _t("login_failed")

    return render_template("counsellor/login.html", t=_t, error=error)


@bp.post("/logout")
@login_required
def logout(account: Account) -> Response:
    session.pop(SESSION_KEY, None)
    logger.info("counsellor page: %s signed out", account.username)

    return redirect(url_for("casepage.login"))


@bp.get("/")
@login_required
def cases(account: Account) -> str:
    """The cases of the counsellor's teams, newest first (no client data)."""
    with get_db().session() as db_session:
        query = (
            select(Handoff)
            .where(Handoff.team.in_(account.teams))
            .order_by(Handoff.id.desc())
            .limit(200)
        )
        rows = list(db_session.scalars(query))

    return render_template(
        "counsellor/cases.html",
        t=_t,
        account=account,
        rows=rows,
        csrf=_csrf_token(),
        course_link=counsellor_text("counsellor.course.groups"),
    )


@bp.get("/open")
@login_required
def open_case(account: Account) -> Response:
    reference = request.args.get("reference", "").strip().upper()

    return redirect(url_for("casepage.case", reference=reference or "-"))


def _case(
    db_session: Any, reference: str, account: Account, *, with_data: bool = False
) -> Handoff:
    """Return the case, if it is one of the account's teams'; `with_data`: only
    while the client's data is still kept."""
    handoff = db_session.scalars(
        select(Handoff).where(Handoff.reference == reference.upper())
    ).first()
    # Another team's case looks the same as no case at all.
    if handoff is None or handoff.team not in account.teams:
        abort(404, "no such case in your teams")
    if with_data and (handoff.conversation_id is None or handoff.client_id is None):
        abort(410, "the client's data has been deleted (on request or by age)")

    return handoff


@bp.get("/cases/<reference>")
@login_required
def case(account: Account, reference: str) -> str:
    flows = get_dialogue(current_app).flows
    db = get_db()
    with db.transaction() as db_session:
        handoff = _case(db_session, reference, account, with_data=True)
        conversation = db_session.get(Conversation, handoff.conversation_id)
        client = db_session.get(Client, handoff.client_id)
        view = case_view(
            conversation, client, handoff, flows, route(flows, handoff), for_page=True
        )
        replies = (conversation.state or {}).get("counsellor_replies", [])
        sent = db_session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation.id,
                Message.direction == OUTBOUND,
                Message.purpose == COUNSELLOR,
            )
            .order_by(Message.id)
        )
        delivered = [(m.body, m.status) for m in sent]
        audit.record(
            db_session,
            actor=account.username,
            action=audit.CASE_VIEW,
            subject=client.reference,
            record_class="interview_answers, message, client",
            reason=f"case {handoff.reference} opened on the counsellor page",
        )
        taken = (handoff.taken_by, handoff.taken_at)

    return render_template(
        "counsellor/case.html",
        t=_t,
        account=account,
        view=view,
        reference=view.reference,
        taken=taken,
        replies=replies,
        delivered=delivered,
        csrf=_csrf_token(),
        limit=REPLY_LIMIT,
    )


@bp.post("/cases/<reference>/take")
@login_required
def take(account: Account, reference: str) -> Response:
    with get_db().transaction() as db_session:
        handoff = _case(db_session, reference, account)
        if handoff.taken_by is None and handoff.client_id is not None:
            handoff.taken_by = account.username
            handoff.taken_at = utcnow()
            client = db_session.get(Client, handoff.client_id)
            audit.record(
                db_session,
                actor=account.username,
                action=audit.CASE_TAKEN,
                subject=client.reference,
                record_class="interview_answers",
                reason=f"case {handoff.reference} taken by the counsellor",
            )
            logger.info("handoff %s: taken by %s", handoff.id, account.username)

    return redirect(url_for("casepage.case", reference=reference))


@bp.post("/cases/<reference>/reply")
@login_required
def reply(account: Account, reference: str) -> Response:
    """Hold the Finnish reply for the worker, which translates and sends it."""
    finnish = request.form.get("text", "").replace("\r\n", "\n").strip()
    if not finnish:
        abort(400, "write the reply first")
    if len(finnish) > min(REPLY_LIMIT, MAX_BODY_CHARS):
        abort(413, f"a reply can have at most {REPLY_LIMIT} characters")
    db = get_db()
    with db.transaction() as db_session:
        handoff = _case(db_session, reference, account, with_data=True)
        conversation = locked_conversation(db_session, handoff.conversation_id)
        client = db_session.get(Client, handoff.client_id)
        if client.opted_out or client.erasing_at is not None:
            abort(409, "the client has stopped messages from Polku")
        message = hold_counsellor_reply(db_session, client, conversation, finnish)
        state = conversation.state or {}
        entry = {
            "message": message.id,
            "by": account.username,
            "at": utcnow().isoformat(),
            "finnish": finnish,
        }
        conversation.state = {
            **state,
            "counsellor_replies": [*state.get("counsellor_replies", []), entry],
        }
        audit.record(
            db_session,
            actor=account.username,
            action=audit.CASE_REPLY,
            subject=client.reference,
            record_class="message",
            reason=f"counsellor replied to case {handoff.reference} through Polku",
        )
        message_id, client_id = message.id, client.id
    settings = current_app.config["POLKU"]
    # Lost if Redis is down now; the sweep queues it again.
    enqueue_reply(get_queue(), message_id, client_id, settings.retry_intervals)
    logger.info("message %s: counsellor reply held for translation", message_id)

    return redirect(url_for("casepage.case", reference=reference))
