"""Handoff to counsellors: open a case when the interview ends or the client asks
for a person, and compose the Finnish e-mail that the team of the client's
municipality receives. `workers/handoff.py` sends it, exactly once.

The e-mail carries the client's words anonymised: the values the anonymiser
replaced are shown only in Polku's own counsellor page, never in an e-mail.
"""

from __future__ import annotations

import copy
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date
from babel.dates import format_datetime as format_local
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import audit
from bot.db import Database
from bot.models import Client, Conversation, CourseQuestion, Handoff, utcnow
from flows import FlowSet
from flows.model import FREE_TEXT_TYPES, FlowError
from flows.teams import Team, Teams
from translations import counsellor_text

logger = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
# Rows whose e-mail is sent once: handoffs, and course participants' questions.
Mailed = Handoff | CourseQuestion
FINISHED, PERSON_REQUESTED = "finished", "person_requested"
# A claim older than this was left by a worker that died while sending.
STALE_CLAIM = timedelta(minutes=15)
# No 0/O, 1/I/L: a reference is read out over the phone.
REFERENCE_LETTERS = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REFERENCE_LENGTH = 7
PLACEHOLDER = re.compile(r"<[A-Z_]+_\d+>")
COUNSELLOR_LANGUAGE = "fi"


def new_reference() -> str:
    return "P-" + "".join(
        secrets.choice(REFERENCE_LETTERS) for _ in range(REFERENCE_LENGTH)
    )


def open_handoff(
    session: Session,
    client: Client,
    conversation: Conversation,
    teams: Teams,
    reason: str,
) -> Handoff:
    """Return the conversation's handoff, opened now if it has none.

    One conversation is one case: asking for a person after the interview
    ended does not send the counsellors a second e-mail.
    """
    existing = session.scalars(
        select(Handoff).where(Handoff.conversation_id == conversation.id)
    ).first()
    if existing is not None:
        return existing
    slots = ((conversation.state or {}).get("interview") or {}).get("slots", {})
    team = teams.route(slots)
    handoff = Handoff(
        reference=new_reference(),
        client_id=client.id,
        conversation_id=conversation.id,
        team=team.id,
        reason=reason,
        status=PENDING,
    )
    session.add(handoff)
    session.flush()
    audit.record(
        session,
        actor="system",
        action=audit.HANDOFF,
        subject=client.reference,
        record_class="interview_answers",
        reason=f"case {handoff.reference} passed to team {team.id} ({reason})",
    )
    logger.info("handoff %s: opened for team %s", handoff.id, team.id)

    return handoff


def claim(db: Database, handoff_id: int, model: type[Mailed] = Handoff) -> bool:
    """Mark handoff `handoff_id` as being sent; False if there is nothing to send.

    Sent, or being sent by another worker right now: nothing to do. This is
    what makes a retried or duplicated job send no second e-mail. `model`:
    another row mailed the same way (a course participant's question).
    """
    with db.transaction() as session:
        handoff = _locked(session, handoff_id, model)
        if handoff is None or handoff.status != PENDING and handoff.status != SENDING:
            return False
        now = utcnow()
        if handoff.status == SENDING and handoff.claimed_at > now - STALE_CLAIM:
            logger.info("%s %s: already being sent", _kind(model), handoff_id)
            return False
        handoff.status = SENDING
        handoff.claimed_at = now
        handoff.attempts += 1

    return True


def mark_sent(db: Database, handoff_id: int, model: type[Mailed] = Handoff) -> None:
    with db.transaction() as session:
        handoff = _locked(session, handoff_id, model)
        if handoff is not None and handoff.status == SENDING:
            handoff.status = SENT
            handoff.sent_at = utcnow()
            handoff.last_error = None
    logger.info("%s %s: sent", _kind(model), handoff_id)


def mark_failed(
    db: Database,
    handoff_id: int,
    error: str,
    *,
    final: bool,
    model: type[Mailed] = Handoff,
) -> None:
    """Record a failed try; pending again for the retry, or failed for good."""
    with db.transaction() as session:
        handoff = _locked(session, handoff_id, model)
        if handoff is None or handoff.status not in (PENDING, SENDING):
            return
        handoff.status = FAILED if final else PENDING
        handoff.last_error = error[:64]
        attempts = handoff.attempts
    if final and model is Handoff:
        # For the operator on call: the counsellors have not got this case.
        logger.error(
            "handoff %s: NOT SENT after %d tries (%s); see `flask --app wsgi "
            "handoffs` and retry with `flask --app wsgi handoffs retry %s`",
            handoff_id,
            attempts,
            error,
            handoff_id,
        )
    elif final:
        logger.error(
            "%s %s: e-mail NOT SENT after %d tries (%s); it waits on the "
            "counsellor page",
            _kind(model),
            handoff_id,
            attempts,
            error,
        )
    else:
        logger.warning(
            "%s %s: sending failed (%s); will retry", _kind(model), handoff_id, error
        )


def _kind(model: type[Mailed]) -> str:
    return "handoff" if model is Handoff else "course question"


def _locked(
    session: Session, handoff_id: int, model: type[Mailed] = Handoff
) -> Mailed | None:
    query = select(model).where(model.id == handoff_id).with_for_update()

    return session.scalars(query).first()


# The e-mail ----------------------------------------------------------------


@dataclass
class CaseView:
    """Everything the e-mail shows, already anonymised and in Finnish."""

    reference: str
    subject: str
    facts: list[tuple[str, str]]
    draft: list[tuple[str, list[tuple[str, str]]]]
    sections: list[tuple[str, list[list[str]]]]
    next_steps: list[str]
    flags: list[str]
    own_words: list[dict[str, str]] = field(default_factory=list)
    headings: dict[str, str] = field(default_factory=dict)


def compose(
    conversation: Conversation,
    client: Client,
    handoff: Handoff,
    flows: FlowSet,
    sender: str,
    team: Team,
) -> EmailMessage:
    """Return the handoff e-mail: Finnish plain text and HTML, no contact details.

    Anonymises the client's words with the conversation's own placeholders,
    so the caller must commit the conversation afterwards.
    """
    view = case_view(conversation, client, handoff, flows, team)
    message = EmailMessage()
    message["Subject"] = view.subject
    message["From"] = sender
    message["To"] = ", ".join(team.email)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = f"<polku-{handoff.reference.lower()}@{_domain(sender)}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_templates().get_template("handoff.txt").render(view=view))
    html = _templates().get_template("handoff.html").render(view=view)
    message.add_alternative(html, subtype="html")

    return message


def case_view(
    conversation: Conversation,
    client: Client,
    handoff: Handoff,
    flows: FlowSet,
    team: Team,
    *,
    for_page: bool = False,
) -> CaseView:
    """Return what the counsellor reads of a case.

    For the e-mail, the client's words are anonymised; `for_page` (Polku's own
    case page, behind a login) shows them as written, with contact details.
    """
    from bot.counsellor import answers_for_counsellor
    from bot.summary import DRAFT_SECTIONS, INFERRED, summarise

    if for_page:
        state = copy.deepcopy(conversation.state or {})
        real = _real_values(state)
        draft = state.get("draft_summary")
        for points in ((draft or {}).get("sections") or {}).values():
            for point in points:
                point["text"] = PLACEHOLDER.sub(
                    lambda m: real.get(m.group(0), m.group(0)), point["text"]
                )
    else:
        state = redacted_state(conversation, flows)
    interview = state.get("interview") or {}
    slots = interview.get("slots", {})
    outcome = state.get("outcome") or {}
    summary = summarise(flows, state)
    answers = answers_for_counsellor(flows.interview, interview)

    def t(key: str, **values: Any) -> str:
        return counsellor_text(f"counsellor.mail.{key}", COUNSELLOR_LANGUAGE, **values)

    languages = Locale.parse(COUNSELLOR_LANGUAGE).languages
    spoken = languages.get(client.language or "", client.language or "-")
    flag_ids = {f for s in outcome.get("suggestions", []) for f in s.get("flags", [])}
    if "interpreter" in flag_ids:
        spoken = f"{spoken} ({t('interpreter')})"
    municipality = _municipality(flows, slots.get("municipality"))
    reason = t(f"reason.{handoff.reason}")
    teams = flows.teams
    facts = [
        (t("reference"), handoff.reference),
        (t("reason"), reason),
        (t("team"), team.name),
        (t("received"), _local_time(handoff.created_at, teams)),
        (t("municipality"), municipality),
        (t("language"), spoken),
    ]
    if teams is not None:
        deadline = teams.reply.deadline(handoff.created_at)
        promised = format_date(deadline, "EEEE d.M.yyyy", locale=COUNSELLOR_LANGUAGE)
        facts.append((t("promised"), promised))
    if for_page:
        facts.append((t("contact"), _contact(client)))
    else:
        facts.append((t("contact"), t("contact_in_polku")))

    draft = []
    if summary.draft:
        marks = {INFERRED: t("inferred")}
        for section in DRAFT_SECTIONS:
            points = summary.draft["sections"].get(section) or []
            if points:
                heading = counsellor_text(f"counsellor.summary.{section}")
                draft.append(
                    (heading, [(p["text"], marks.get(p["basis"], "")) for p in points])
                )
    sections = [
        (
            counsellor_text(f"counsellor.summary.{section}"),
            [line.split("\n") for line in summary.sections.get(section, [])],
        )
        for section in ("situation", "strengths", "goals", "obstacles")
        if summary.sections.get(section)
    ]
    flags = list(summary.flags)
    flags += [t("skipped", question=q) for q in summary.open_questions]
    for answer in answers:
        field_name = counsellor_text(f"counsellor.field.{answer.step}")
        if answer.status not in ("original", "translated", "skipped"):
            flags.append(t("not_translated", field=field_name))
        status = (answer.esco or {}).get("status")
        if status and status != "confirmed":
            flags.append(t("esco_unconfirmed", field=field_name))
    own_words = [
        {
            "question": counsellor_text(f"counsellor.field.{answer.step}"),
            "finnish": answer.text,
            "own": answer.own_words or "",
            "language": languages.get(answer.language or "", answer.language or ""),
        }
        for answer in answers
        if answer.own_words
        and flows.interview.steps[answer.step].type in FREE_TEXT_TYPES
    ]
    headings = {
        key: t(f"heading.{key}")
        for key in ("facts", "draft", "profile", "services", "flags", "own_words")
    }
    headings["finnish"] = t("finnish")
    headings["own"] = t("own")
    headings["footer"] = t("footer")
    subject = t("subject", reason=reason, reference=handoff.reference)
    subject += f" ({municipality})"

    return CaseView(
        reference=handoff.reference,
        subject=subject,
        facts=facts,
        draft=draft,
        sections=sections,
        next_steps=list(summary.next_steps),
        flags=list(dict.fromkeys(flags)),
        own_words=own_words,
        headings=headings,
    )


def redacted_state(conversation: Conversation, flows: FlowSet) -> dict[str, Any]:
    """Return a copy of the conversation's state with the client's words anonymised.

    Free-text answers, their Finnish translations and the rules' reasons (which
    quote answers) get the conversation's placeholders; choices, numbers and
    ESCO labels carry no words of the client's.
    """
    from bot.counsellor import digest

    state = copy.deepcopy(conversation.state or {})
    interview = state.get("interview") or {}
    slots = interview.get("slots", {})
    translations = interview.get("translations", {})
    for step in flows.interview.steps.values():
        value = slots.get(step.slot)
        if step.type not in FREE_TEXT_TYPES or not isinstance(value, str):
            continue
        entry = translations.get(step.slot)
        current = entry is not None and entry.get("of") == digest(value)
        slots[step.slot] = redact(conversation, value)
        if current:
            if entry.get("text"):
                entry["text"] = redact(conversation, entry["text"])
            entry["of"] = digest(slots[step.slot])
    for suggestion in (state.get("outcome") or {}).get("suggestions", []):
        if suggestion.get("because"):
            suggestion["because"] = redact(conversation, suggestion["because"])

    return state


def redact(conversation: Conversation, words: str) -> str:
    """Anonymise `words` with the conversation's placeholders, and replace every
    value the conversation already knows, wherever it appears."""
    from bot.conversation import anonymise_for

    anonymised = anonymise_for(conversation, words).text
    known = (conversation.state or {}).get("placeholders", {})
    for kind, values in known.items():
        for value, number in sorted(values.items(), key=lambda v: -len(v[0])):
            if len(value) < 3:
                continue
            pattern = rf"(?<!\w){re.escape(value)}(?!\w)"
            anonymised = re.sub(
                pattern, f"<{kind}_{number}>", anonymised, flags=re.IGNORECASE
            )

    return anonymised


def _real_values(state: dict[str, Any]) -> dict[str, str]:
    """Return each placeholder of the conversation with the value it stands for."""
    return {
        f"<{kind}_{number}>": value
        for kind, values in (state.get("placeholders") or {}).items()
        for value, number in values.items()
    }


def _contact(client: Client) -> str:
    channel = counsellor_text(f"counsellor.mail.channel.{client.channel}")
    if client.channel == "web":
        return channel

    return f"{channel}: {client.address}"


def _municipality(flows: FlowSet, value: Any) -> str:
    if not value:
        return counsellor_text("counsellor.mail.unknown")
    for choice in flows.interview.steps["municipality"].choices:
        if choice.value == value and choice.literal:
            return choice.label

    return counsellor_text("counsellor.mail.other_municipality")


def _local_time(moment: datetime, teams: Teams | None) -> str:
    zone = ZoneInfo(teams.reply.timezone if teams else "Europe/Helsinki")

    return format_local(
        moment.astimezone(zone), "d.M.yyyy 'klo' H.mm", locale=COUNSELLOR_LANGUAGE
    )


def _domain(sender: str) -> str:
    addresses = getaddresses([sender])
    address = addresses[0][1] if addresses else ""
    try:
        return Address(addr_spec=address).domain or "localhost"
    except (ValueError, IndexError):
        return "localhost"


_environment: Environment | None = None


def _templates() -> Environment:
    global _environment
    if _environment is None:
        _environment = Environment(
            loader=PackageLoader("bot", "templates/email"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    return _environment


def route(flows: FlowSet, handoff: Handoff) -> Team:
    """Return the team a handoff was routed to (or the default, if it is gone)."""
    if flows.teams is None:
        raise FlowError("TEAMS: flows/teams.yaml is missing; no team to send to")
    teams = flows.teams.teams

    return teams.get(handoff.team) or teams[flows.teams.default]


def handoffs(db: Database, status: str | None = None) -> list[Handoff]:
    """Return the handoffs, newest first, for the operator's listing."""
    with db.session() as session:
        query = select(Handoff).order_by(Handoff.id.desc())
        if status:
            query = query.where(Handoff.status == status)

        return list(session.scalars(query))
