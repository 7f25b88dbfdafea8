"""Civic orientation between the teacher's sessions: groups, enrolment, the lesson
messages that fall due, quiz answers, reflections and questions for the teacher.

The scheduler's job calls `write_due`; the worker's turn calls `CourseTurn`
(through `bot.conversation.respond`) for a participant's message; the CLI and the
counsellor page enrol and read progress. What must be sent is derived from the
database, and each lesson message is written once: its row has a unique key.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from babel.dates import format_skeleton
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.channels import SMS, WHATSAPP, Channel
from bot.channels.templates import WINDOW_HOURS, WINDOW_MARGIN_MINUTES, Template
from bot.conversation import (
    CHOOSING_LANGUAGE,
    COURSE,
    Dialogue,
    course_notice,
    language_menu,
)
from bot.db import Database
from bot.models import (
    Client,
    Conversation,
    CourseGroup,
    CourseQuestion,
    Enrolment,
    LessonAnswer,
    LessonDelivery,
    Message,
    utcnow,
)
from flows.answers import looks_like_question
from flows.course import (
    PROMPT,
    QUIZ,
    REMINDER,
    WEEKDAYS,
    Course,
    Due,
    Schedule,
    course_text,
    due_times,
    is_daytime,
)
from flows.teams import ADDRESS
from translations import LANGUAGES_BY_CODE, text

logger = logging.getLogger(__name__)

ACTIVE, PAUSED, FINISHED, LEFT = "active", "paused", "finished", "left"
# What became of a lesson message (LessonDelivery.status).
SENT, TEMPLATE, HELD, MISSED, SKIPPED = "sent", "template", "held", "missed", "skipped"
QUIZ_KIND, REFLECTION_KIND = "quiz", "reflection"
# Outbound messages of the course, and those waiting for WhatsApp's window.
COURSE_PURPOSE = "course"
HELD_STATUS = "held"
# A question for the teacher: pending -> sending -> sent -> answered.
PENDING, SENDING, QUESTION_SENT, ANSWERED, FAILED = (
    "pending",
    "sending",
    "sent",
    "answered",
    "failed",
)
CODE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
BATCH = 500


class CourseError(ValueError):
    """A group or an enrolment cannot be made as asked; the message says why."""


# Groups ------------------------------------------------------------------


def create_group(
    session: Session,
    *,
    code: str,
    name: str,
    team: str,
    teacher_email: str,
    days: str,
    time: str,
    start: dt.date,
    timezone: str = "Europe/Helsinki",
    teams: Iterable[str] = (),
) -> CourseGroup:
    """Add a group; raise `CourseError` for a bad schedule, team or address."""
    code = code.strip().upper()
    if not 3 <= len(code) <= 16 or not code.isalnum():
        raise CourseError("the code has 3 to 16 letters and digits, like MIK-UA1")
    known = set(teams)
    if known and team not in known:
        raise CourseError(f"team {team!r} is not in teams.yaml ({', '.join(known)})")
    if not ADDRESS.match(teacher_email):
        raise CourseError(f"{teacher_email!r} is not an e-mail address")
    try:
        schedule = Schedule.parse(days, time, timezone, start)
    except ValueError as exc:
        raise CourseError(str(exc)) from exc
    if session.scalars(select(CourseGroup).where(CourseGroup.code == code)).first():
        raise CourseError(f"a group with the code {code} exists already")
    group = CourseGroup(
        code=code,
        name=name.strip() or code,
        team=team,
        teacher_email=teacher_email,
        days=schedule.day_names,
        session_time=schedule.time.strftime("%H:%M"),
        timezone=timezone,
        start_date=start,
    )
    session.add(group)
    session.flush()
    logger.info("course group %s: created", group.id)

    return group


def schedule_of(group: CourseGroup) -> Schedule:
    return Schedule.parse(
        group.days, group.session_time, group.timezone, group.start_date
    )


def find_group(session: Session, code: str) -> CourseGroup | None:
    normalised = "".join(code.split()).upper().replace("-", "")
    for group in session.scalars(
        select(CourseGroup).where(CourseGroup.closed_at.is_(None))
    ):
        if group.code.replace("-", "") == normalised:
            return group

    return None


# Enrolment ---------------------------------------------------------------


def enrol(
    session: Session,
    client: Client,
    group: CourseGroup,
    course: Course,
    *,
    by: str,
    label: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[Enrolment, Conversation]:
    """Enrol `client` in `group` (again: the same enrolment, active again).

    The client's open conversation ends and a course conversation begins; the
    lessons whose sessions have begun are not sent.
    """
    now = now or utcnow()
    enrolment = session.scalars(
        select(Enrolment).where(
            Enrolment.group_id == group.id, Enrolment.client_id == client.id
        )
    ).first()
    conversation = _course_conversation(session, client, enrolment, now)
    if enrolment is None:
        enrolment = Enrolment(
            group_id=group.id,
            client_id=client.id,
            enrolled_by=by,
            first_lesson=first_lesson(course, schedule_of(group), now),
        )
        session.add(enrolment)
    enrolment.status = ACTIVE
    enrolment.conversation_id = conversation.id
    if label is not None:
        enrolment.label = label.strip() or None
    session.flush()
    logger.info(
        "enrolment %s: client %s in group %s, by %s",
        enrolment.id,
        client.id,
        group.id,
        "the client" if by == "client" else "a counsellor",
    )

    return enrolment, conversation


def _course_conversation(
    session: Session, client: Client, enrolment: Enrolment | None, now: dt.datetime
) -> Conversation:
    if enrolment is not None and enrolment.conversation_id is not None:
        conversation = session.get(Conversation, enrolment.conversation_id)
        if conversation is not None and conversation.ended_at is None:
            return conversation
    # One conversation at a time: the course's is now the client's current one.
    session.execute(
        update(Conversation)
        .where(Conversation.client_id == client.id, Conversation.ended_at.is_(None))
        .values(ended_at=now)
    )
    conversation = Conversation(client_id=client.id, stage=COURSE, state={})
    session.add(conversation)
    session.flush()

    return conversation


def first_lesson(course: Course, schedule: Schedule, now: dt.datetime) -> int:
    """Return the first lesson whose session has not begun at `now`."""
    for number, session_at in enumerate(schedule.sessions(len(course.lessons)), 1):
        if session_at > now:
            return number

    return len(course.lessons) + 1


def current_enrolment(session: Session, client: Client) -> Enrolment | None:
    query = (
        select(Enrolment)
        .where(Enrolment.client_id == client.id, Enrolment.status.in_((ACTIVE, PAUSED)))
        .order_by(Enrolment.id.desc())
    )

    return session.scalars(query.limit(1)).first()


def set_status(session: Session, enrolment: Enrolment, status: str) -> None:
    enrolment.status = status
    logger.info("enrolment %s: %s", enrolment.id, status)


def group_facts(group: CourseGroup) -> dict[str, str]:
    """What the welcome says of a group, kept in a conversation until it is sent."""
    return {
        "name": group.name,
        "days": group.days,
        "time": group.session_time,
        "start": group.start_date.isoformat(),
    }


def welcome(group: CourseGroup | dict[str, str], language: str | None) -> str:
    """The course's first message: what comes when, and what the client can do."""
    facts = group_facts(group) if isinstance(group, CourseGroup) else group
    code = language if language in LANGUAGES_BY_CODE else "en"
    # 1 January 2024 was a Monday: day 0 of the week.
    days = ", ".join(
        format_skeleton(
            "EEEE",
            dt.date(2024, 1, 1) + dt.timedelta(WEEKDAYS.index(day)),
            locale=code,
        )
        for day in facts["days"].split(",")
    )

    return text(
        "course.welcome",
        language,
        group=facts["name"],
        days=days,
        time=facts["time"],
        start=format_skeleton(
            "MMMMd", dt.date.fromisoformat(facts["start"]), locale=code
        ),
    )


# Writing what falls due ---------------------------------------------------


@dataclass
class Written:
    """What one run of `write_due` did."""

    message_ids: list[int] = field(default_factory=list)
    sent: int = 0
    templates: int = 0
    held: int = 0
    missed: int = 0
    finished: int = 0


def write_due(
    db: Database,
    course: Course,
    channels: dict[str, Channel],
    templates: dict[str, Template],
    now: dt.datetime | None = None,
) -> Written:
    """Write every lesson message that has fallen due by `now`, once each.

    Run by the scheduler every few minutes; any number of runs, at the same
    time or after a restart, write each participant's message for each lesson
    once. At night nothing is written; what fell due is written in the
    morning, or recorded as missed once its time has passed.
    """
    now = now or utcnow()
    done = Written()
    with db.session() as session:
        rows = session.execute(
            select(Enrolment.id, Enrolment.first_lesson, CourseGroup)
            .join(CourseGroup, CourseGroup.id == Enrolment.group_id)
            .where(Enrolment.status == ACTIVE, CourseGroup.closed_at.is_(None))
            .order_by(Enrolment.id)
        ).all()
        recorded = _recorded_counts(session)
        plans = {group.id: (group, _plan(course, group)) for _, _, group in rows}
    counted: dict[tuple[int, int], tuple[int, int]] = {}
    for enrolment_id, first, group in rows:
        group, dues = plans[group.id]
        if (group.id, first) not in counted:
            mine = [due for due in dues if due.lesson >= first]
            counted[group.id, first] = (sum(due.at <= now for due in mine), len(mine))
        fallen, total = counted[group.id, first]
        if recorded.get(enrolment_id, 0) >= fallen and fallen < total:
            # Everything due so far is recorded; the usual run at most times.
            # Schedules and first lessons never change, so the count is exact.
            continue
        with db.transaction() as session:
            _write_for(
                session,
                enrolment_id,
                group,
                dues,
                course,
                channels,
                templates,
                now,
                done,
            )
    if done.message_ids or done.missed:
        logger.info(
            "course: %d sent, %d as templates, %d held, %d missed, %d finished",
            done.sent,
            done.templates,
            done.held,
            done.missed,
            done.finished,
        )

    return done


def _recorded_counts(session: Session) -> dict[int, int]:
    """Return how many lesson messages each active enrolment has recorded."""
    rows = session.execute(
        select(LessonDelivery.enrolment_id, func.count(LessonDelivery.id))
        .join(Enrolment, Enrolment.id == LessonDelivery.enrolment_id)
        .where(
            Enrolment.status == ACTIVE,
            LessonDelivery.lesson >= Enrolment.first_lesson,
        )
        .group_by(LessonDelivery.enrolment_id)
    )
    return {enrolment_id: count for enrolment_id, count in rows}


def _plan(course: Course, group: CourseGroup) -> list[Due]:
    return due_times(course, schedule_of(group))


def _write_for(
    session: Session,
    enrolment_id: int,
    group: CourseGroup,
    dues: list[Due],
    course: Course,
    channels: dict[str, Channel],
    templates: dict[str, Template],
    now: dt.datetime,
    done: Written,
) -> None:
    enrolment = session.get(Enrolment, enrolment_id)
    if enrolment is None or enrolment.status != ACTIVE:
        return
    client = session.get(Client, enrolment.client_id)
    if client is None or client.erasing_at is not None:
        return
    recorded = {
        (row.lesson, row.kind): row.status
        for row in session.scalars(
            select(LessonDelivery).where(LessonDelivery.enrolment_id == enrolment.id)
        )
    }
    mine = [due for due in dues if due.lesson >= enrolment.first_lesson]
    daytime = is_daytime(now, schedule_of(group).timezone)
    for due in mine:
        if due.at > now:
            break
        if (due.lesson, due.kind) in recorded:
            continue
        status = _outcome(session, enrolment, client, due, recorded, now, daytime)
        if status is None:
            continue
        delivery = _claim(session, enrolment, due, status)
        if delivery is None:
            continue
        recorded[(due.lesson, due.kind)] = status
        if status in (MISSED, SKIPPED):
            done.missed += status == MISSED
            continue
        written = _write_lesson_message(
            session, client, enrolment, group, course, due, channels, templates, now
        )
        delivery.status = written.status
        delivery.message_id = written.first_id
        done.message_ids.extend(written.queued)
        done.sent += written.status == SENT
        done.templates += written.status == TEMPLATE
        done.held += written.status == HELD
    if len(recorded) >= len(mine) and all(due.at <= now for due in mine):
        set_status(session, enrolment, FINISHED)
        done.finished += 1


def _outcome(
    session: Session,
    enrolment: Enrolment,
    client: Client,
    due: Due,
    recorded: dict[tuple[int, str], str],
    now: dt.datetime,
    daytime: bool,
) -> str | None:
    """Return what to record for a message that fell due; None: not yet."""
    if now > due.until:
        return MISSED
    if due.kind == REMINDER:
        quiz = recorded.get((due.lesson, QUIZ))
        if quiz is None:
            return None
        if quiz in (MISSED, SKIPPED) or _quiz_started(session, enrolment, due.lesson):
            return SKIPPED
    if client.opted_out or client.language is None or not daytime:
        return None

    return SENT


def _claim(
    session: Session, enrolment: Enrolment, due: Due, status: str
) -> LessonDelivery | None:
    """Insert the delivery's row; None if another run has written it already."""
    delivery = LessonDelivery(
        enrolment_id=enrolment.id,
        lesson=due.lesson,
        kind=due.kind,
        status=status,
        due_at=due.at,
    )
    try:
        with session.begin_nested():
            session.add(delivery)
            session.flush()
    except IntegrityError:
        logger.info(
            "enrolment %s: lesson %s %s written by another run",
            enrolment.id,
            due.lesson,
            due.kind,
        )
        return None

    return delivery


def _quiz_started(session: Session, enrolment: Enrolment, lesson: int) -> bool:
    query = select(LessonAnswer.id).where(
        LessonAnswer.enrolment_id == enrolment.id,
        LessonAnswer.lesson == lesson,
        LessonAnswer.kind == QUIZ_KIND,
    )

    return session.scalars(query.limit(1)).first() is not None


@dataclass(frozen=True)
class _Outgoing:
    status: str
    first_id: int | None
    # Written as queued, for the caller to queue; held ones wait for the client.
    queued: list[int]


def _write_lesson_message(
    session: Session,
    client: Client,
    enrolment: Enrolment,
    group: CourseGroup,
    course: Course,
    due: Due,
    channels: dict[str, Channel],
    templates: dict[str, Template],
    now: dt.datetime,
) -> _Outgoing:
    language = client.language
    lesson = course.lesson(due.lesson)
    title = course_text(lesson.key("title"), language)
    if due.kind == PROMPT:
        body = lesson_text(
            course,
            due.lesson,
            language,
            _session_line(group, due.lesson, course, language),
        )
        template, values = (
            "course_lesson",
            {
                "title": title,
                "session": _session_words(group, due.lesson, course, language),
            },
        )
    else:
        question = _next_question(session, enrolment, due.lesson, course)
        body = quiz_text(course, due.lesson, question, language)
        if due.kind == REMINDER:
            body = f"{text('course.quiz_reminder', language)}\n\n{body}"
        template, values = "course_quiz", {"title": title}
    conversation = (
        session.get(Conversation, enrolment.conversation_id)
        if enrolment.conversation_id
        else None
    )

    return write_course_message(
        session,
        client,
        conversation,
        body,
        channels,
        templates.get(template),
        values,
        now,
    )


def write_course_message(
    session: Session,
    client: Client,
    conversation: Conversation | None,
    body: str,
    channels: dict[str, Channel],
    template: Template | None,
    values: dict[str, str],
    now: dt.datetime,
) -> _Outgoing:
    """Write `body` for `client`, or, outside WhatsApp's window, the template
    with `body` held until the client writes."""
    from bot.messaging import write_replies

    if client.channel != WHATSAPP or window_open(session, client, now):
        replies = write_replies(
            session, client, conversation, [body], channels, COURSE_PURPOSE
        )
        ids = [reply.id for reply in replies]
        return _Outgoing(SENT, ids[0] if ids else None, ids)

    chosen = template.sid_for(client.language) if template else None
    queued: list[int] = []
    status = HELD
    if chosen is not None and template is not None:
        language, sid = chosen
        wording, variables = template.render(language, values)
        [notice] = write_replies(
            session, client, conversation, [wording], channels, COURSE_PURPOSE
        )
        notice.content_sid, notice.content_variables = sid, variables
        queued.append(notice.id)
        status = TEMPLATE
    else:
        logger.warning(
            "client %s: WhatsApp window closed, no template %s; held until they write",
            client.id,
            template.name if template else "configured",
        )
    held = write_replies(
        session, client, conversation, [body], channels, COURSE_PURPOSE
    )
    for message in held:
        message.status = HELD_STATUS

    return _Outgoing(status, (queued or [held[0].id])[0], queued)


def window_open(session: Session, client: Client, now: dt.datetime) -> bool:
    """True while WhatsApp still takes free text: the client wrote within 24 hours."""
    last = session.scalar(
        select(func.max(Message.created_at)).where(
            Message.client_id == client.id, Message.direction == "in"
        )
    )
    if last is None:
        return False
    if last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)
    open_for = dt.timedelta(hours=WINDOW_HOURS, minutes=-WINDOW_MARGIN_MINUTES)

    return now - last < open_for


def release_held(session: Session, client: Client) -> list[int]:
    """Queue the client's held messages: their message has opened the window."""
    held = list(
        session.scalars(
            select(Message)
            .where(Message.client_id == client.id, Message.status == HELD_STATUS)
            .order_by(Message.id)
        )
    )
    for message in held:
        message.status = "queued"
    if held:
        logger.info("client %s: %d held course messages released", client.id, len(held))

    return [message.id for message in held]


def has_held(session: Session, client: Client) -> bool:
    query = select(Message.id).where(
        Message.client_id == client.id, Message.status == HELD_STATUS
    )

    return session.scalars(query.limit(1)).first() is not None


# Texts ------------------------------------------------------------------


def _session_at(group: CourseGroup, lesson: int, course: Course) -> dt.datetime:
    return schedule_of(group).sessions(len(course.lessons))[lesson - 1]


def _session_words(
    group: CourseGroup, lesson: int, course: Course, language: str | None
) -> str:
    code = language if language in LANGUAGES_BY_CODE else "en"
    at = _session_at(group, lesson, course)

    return f"{format_skeleton('MMMMEEEEd', at, locale=code)} {at.strftime('%H:%M')}"


def _session_line(
    group: CourseGroup, lesson: int, course: Course, language: str | None
) -> str:
    code = language if language in LANGUAGES_BY_CODE else "en"
    at = _session_at(group, lesson, course)

    return text(
        "course.session",
        language,
        date=format_skeleton("MMMMEEEEd", at, locale=code),
        time=at.strftime("%H:%M"),
    )


def lesson_text(
    course: Course, number: int, language: str | None, session_line: str = ""
) -> str:
    """The lesson's prompt message: title, the short texts, the reflection question."""
    lesson = course.lesson(number)
    heading = text(
        "course.lesson_heading",
        language,
        number=number,
        total=len(course.lessons),
        title=course_text(lesson.key("title"), language),
    )
    prompts = [
        course_text(lesson.key(f"prompt.{n}"), language)
        for n in range(1, lesson.prompts + 1)
    ]
    reflection = text(
        "course.reflection",
        language,
        question=course_text(lesson.key("reflection"), language),
    )
    head = f"{heading}\n{session_line}" if session_line else heading
    parts = [head, *prompts, reflection, text("course.reply_hint", language)]

    return "\n\n".join(parts)


def quiz_text(course: Course, number: int, question: int, language: str | None) -> str:
    """One quiz question with its numbered options."""
    lesson = course.lesson(number)
    options = lesson.quiz[question - 1].options
    heading = text(
        "course.quiz_heading",
        language,
        number=number,
        title=course_text(lesson.key("title"), language),
    )
    lines = [course_text(lesson.key(f"quiz.{question}.question"), language)]
    for option in range(1, options + 1):
        key = lesson.key(f"quiz.{question}.option.{option}")
        lines.append(f"{option} {course_text(key, language)}")
    hint = text("course.quiz_hint", language)

    return f"{heading}\n\n" + "\n".join(lines) + f"\n\n{hint}"


def _next_question(
    session: Session, enrolment: Enrolment, lesson: int, course: Course
) -> int:
    answered = set(
        session.scalars(
            select(LessonAnswer.question).where(
                LessonAnswer.enrolment_id == enrolment.id,
                LessonAnswer.lesson == lesson,
                LessonAnswer.kind == QUIZ_KIND,
            )
        )
    )
    for number in range(1, len(course.lesson(lesson).quiz) + 1):
        if number not in answered:
            return number

    return len(course.lesson(lesson).quiz)


# A participant's turn -----------------------------------------------------


def parse_choice(body: str, options: int) -> int | None:
    """Return the option a reply chooses ("2", "b", "٢", "2)"), or None."""
    cleaned = (
        unicodedata.normalize("NFKC", body).strip().strip(".)!").strip().casefold()
    )
    if len(cleaned) != 1:
        return None
    if cleaned.isdigit():
        number = unicodedata.digit(cleaned)
    elif "a" <= cleaned <= "e":
        number = ord(cleaned) - ord("a") + 1
    else:
        return None

    return number if 1 <= number <= options else None


def _looks_like_choice(body: str) -> bool:
    cleaned = unicodedata.normalize("NFKC", body).strip().strip(".)!").strip()

    return len(cleaned) <= 2 and (cleaned.isdigit() or cleaned.isalpha())


@dataclass
class CourseTurn:
    """Answers a participant's message inside `bot.messaging.answer`'s transaction.

    Called by `respond` after the commands that work everywhere; returns None
    when the message is not the course's to answer.
    """

    session: Session
    message_id: int | None = None
    held: bool = False
    # Set when the turn opened a question for the teacher; the caller queues
    # its e-mail after the commit.
    question_id: int | None = None
    course: Course = field(init=False)

    def __call__(
        self,
        client: Client,
        conversation: Conversation,
        word: str,
        body: str,
        dialogue: Dialogue,
    ) -> list[str] | None:
        course, commands = dialogue.flows.course, dialogue.commands
        if course is None:
            return None
        self.course = course
        joining = self._keyword(word, commands.course)
        if joining is not None:
            return self._join(client, conversation, joining, dialogue)
        if conversation.stage != COURSE:
            return None
        enrolment = current_enrolment(self.session, client)
        if enrolment is None:
            return None
        language = client.language
        if word in commands.pause:
            set_status(self.session, enrolment, PAUSED)
            return [text("course.paused", language)]
        if word in commands.start:
            if enrolment.status == PAUSED:
                set_status(self.session, enrolment, ACTIVE)
            return [text("course.resumed", language)]
        if word in commands.help:
            return [text("course.help", language)]
        if word in commands.human:
            conversation.state = {**(conversation.state or {}), "asking": True}
            return [text("course.ask", language)]
        if self.held:
            # Their message answered a template: the held lesson is the reply.
            return []
        if word in commands.back | commands.restart:
            # The interview's commands mean nothing here; say what does.
            return [text("course.continue", language)]

        return self._answer(client, conversation, enrolment, body)

    def _keyword(self, word: str, keywords: frozenset[str]) -> str | None:
        first, _, rest = word.partition(" ")
        if first in keywords and rest.strip():
            return rest.strip()

        return None

    def _join(
        self,
        client: Client,
        conversation: Conversation,
        code: str,
        dialogue: Dialogue,
    ) -> list[str]:
        language = client.language
        group = find_group(self.session, code)
        if group is None:
            logger.info("client %s: asked for an unknown course group", client.id)
            key = "course.unknown_group"
            if language in LANGUAGES_BY_CODE:
                return [text(key, language, code=code)]
            return [text(key, "fi", code=code) + "\n\n" + text(key, "en", code=code)]
        enrolment, course_conversation = enrol(
            self.session, client, group, self.course, by="client"
        )
        if language not in LANGUAGES_BY_CODE:
            # The language first; the welcome follows the choice (conversation._prompt).
            course_conversation.stage = CHOOSING_LANGUAGE
            course_conversation.state = {
                "resume": COURSE,
                "course_welcome": group_facts(group),
            }
            return [language_menu(None)]

        return [
            course_notice(language, course_conversation, dialogue),
            welcome(group, language),
        ]

    def _answer(
        self,
        client: Client,
        conversation: Conversation,
        enrolment: Enrolment,
        body: str,
    ) -> list[str]:
        language = client.language
        state = conversation.state or {}
        pending = self._pending_quiz(enrolment)
        if pending is not None and not state.get("asking"):
            lesson, question = pending
            options = self.course.lesson(lesson).quiz[question - 1].options
            choice = parse_choice(body, options)
            if choice is not None:
                return self._score(enrolment, lesson, question, choice, language)
            if _looks_like_choice(body):
                return [text("course.quiz_not_understood", language, count=options)]
        elif _looks_like_choice(body):
            # "ok", "5": too short to be a question or a thought.
            return [text("course.continue", language)]
        reflection = self._open_reflection(enrolment)
        if (
            reflection is not None
            and not state.get("asking")
            and not looks_like_question(body)
        ):
            self.session.add(
                LessonAnswer(
                    enrolment_id=enrolment.id,
                    lesson=reflection,
                    kind=REFLECTION_KIND,
                    question=0,
                )
            )
            return [text("course.reflection_thanks", language)]
        conversation.state = {k: v for k, v in state.items() if k != "asking"}
        question = CourseQuestion(
            reference=_reference(),
            enrolment_id=enrolment.id,
            message_id=self.message_id,
            lesson=self._last_lesson(enrolment),
        )
        self.session.add(question)
        self.session.flush()
        self.question_id = question.id
        logger.info(
            "enrolment %s: question %s for the teacher", enrolment.id, question.id
        )

        return [text("course.question_sent", language)]

    def _score(
        self,
        enrolment: Enrolment,
        lesson: int,
        question: int,
        choice: int,
        language: str | None,
    ) -> list[str]:
        entry = self.course.lesson(lesson)
        right = entry.quiz[question - 1].answer
        self.session.add(
            LessonAnswer(
                enrolment_id=enrolment.id,
                lesson=lesson,
                kind=QUIZ_KIND,
                question=question,
                choice=choice,
                correct=choice == right,
            )
        )
        self.session.flush()
        verdict = (
            text("course.quiz_right", language)
            if choice == right
            else text("course.quiz_wrong", language, number=right)
        )
        explanation = course_text(entry.key(f"quiz.{question}.explanation"), language)
        replies = [f"{verdict} {explanation}"]
        if question < len(entry.quiz):
            replies.append(quiz_text(self.course, lesson, question + 1, language))
        else:
            score = self.session.scalar(
                select(func.count(LessonAnswer.id)).where(
                    LessonAnswer.enrolment_id == enrolment.id,
                    LessonAnswer.lesson == lesson,
                    LessonAnswer.kind == QUIZ_KIND,
                    LessonAnswer.correct.is_(True),
                )
            )
            replies.append(
                text(
                    "course.quiz_score",
                    language,
                    right=score or 0,
                    total=len(entry.quiz),
                )
            )

        return replies

    def _pending_quiz(self, enrolment: Enrolment) -> tuple[int, int] | None:
        """Return (lesson, question) of the quiz waiting for an answer, if any."""
        lesson = self.session.scalar(
            select(func.max(LessonDelivery.lesson)).where(
                LessonDelivery.enrolment_id == enrolment.id,
                LessonDelivery.kind.in_((QUIZ, REMINDER)),
                LessonDelivery.status.in_((SENT, TEMPLATE, HELD)),
            )
        )
        if lesson is None:
            return None
        answered = set(
            self.session.scalars(
                select(LessonAnswer.question).where(
                    LessonAnswer.enrolment_id == enrolment.id,
                    LessonAnswer.lesson == lesson,
                    LessonAnswer.kind == QUIZ_KIND,
                )
            )
        )
        for number in range(1, len(self.course.lesson(lesson).quiz) + 1):
            if number not in answered:
                return lesson, number

        return None

    def _open_reflection(self, enrolment: Enrolment) -> int | None:
        """Return the lesson whose reflection question waits for an answer."""
        lesson = self._last_lesson(enrolment, kinds=(PROMPT,))
        if lesson is None:
            return None
        answered = self.session.scalars(
            select(LessonAnswer.id).where(
                LessonAnswer.enrolment_id == enrolment.id,
                LessonAnswer.lesson == lesson,
                LessonAnswer.kind == REFLECTION_KIND,
            )
        ).first()

        return None if answered else lesson

    def _last_lesson(
        self, enrolment: Enrolment, kinds: tuple[str, ...] = (PROMPT, QUIZ, REMINDER)
    ) -> int | None:
        return self.session.scalar(
            select(func.max(LessonDelivery.lesson)).where(
                LessonDelivery.enrolment_id == enrolment.id,
                LessonDelivery.kind.in_(kinds),
                LessonDelivery.status.in_((SENT, TEMPLATE, HELD)),
            )
        )


def _reference() -> str:
    return "K" + "".join(secrets.choice(CODE_CHARS) for _ in range(7))


def erase_enrolments(session: Session, client: Client) -> None:
    """Delete the client's enrolments and all that hangs on them (on DELETE)."""
    ids = list(
        session.scalars(select(Enrolment.id).where(Enrolment.client_id == client.id))
    )
    if not ids:
        return
    for model in (LessonAnswer, LessonDelivery, CourseQuestion):
        session.execute(delete(model).where(model.enrolment_id.in_(ids)))
    session.execute(delete(Enrolment).where(Enrolment.id.in_(ids)))


def record_read(session: Session, message_id: int, at: dt.datetime) -> None:
    """WhatsApp says the participant read lesson message `message_id`."""
    session.execute(
        update(LessonDelivery)
        .where(
            LessonDelivery.message_id == message_id, LessonDelivery.read_at.is_(None)
        )
        .values(read_at=at)
    )


# Progress -----------------------------------------------------------------


@dataclass(frozen=True)
class LessonProgress:
    prompt: str = ""
    read: bool = False
    reflection: bool = False
    quiz_right: int = 0
    quiz_answered: int = 0
    quiz: str = ""


@dataclass(frozen=True)
class ParticipantProgress:
    reference: str
    label: str
    language: str
    channel: str
    status: str
    enrolled: dt.date
    lessons: dict[int, LessonProgress]
    questions: int

    @property
    def quiz_score(self) -> tuple[int, int]:
        right = sum(item.quiz_right for item in self.lessons.values())
        answered = sum(item.quiz_answered for item in self.lessons.values())
        return right, answered


def progress(
    session: Session, group: CourseGroup, course: Course
) -> list[ParticipantProgress]:
    """Each participant's lessons: sent, read, reflected on, quiz results."""
    rows = session.execute(
        select(Enrolment, Client)
        .join(Client, Client.id == Enrolment.client_id)
        .where(Enrolment.group_id == group.id)
        .order_by(Enrolment.id)
    ).all()
    found = []
    for enrolment, client in rows:
        deliveries = list(
            session.scalars(
                select(LessonDelivery).where(
                    LessonDelivery.enrolment_id == enrolment.id
                )
            )
        )
        answers = list(
            session.scalars(
                select(LessonAnswer).where(LessonAnswer.enrolment_id == enrolment.id)
            )
        )
        questions = session.scalar(
            select(func.count(CourseQuestion.id)).where(
                CourseQuestion.enrolment_id == enrolment.id
            )
        )
        lessons: dict[int, LessonProgress] = {}
        for number in range(1, len(course.lessons) + 1):
            mine = {row.kind: row for row in deliveries if row.lesson == number}
            given = [row for row in answers if row.lesson == number]
            quiz = [row for row in given if row.kind == QUIZ_KIND]
            prompt = mine.get(PROMPT)
            quiz_row = mine.get(QUIZ)
            lessons[number] = LessonProgress(
                prompt=prompt.status if prompt else "",
                read=bool(prompt and prompt.read_at),
                reflection=any(row.kind == REFLECTION_KIND for row in given),
                quiz_right=sum(1 for row in quiz if row.correct),
                quiz_answered=len(quiz),
                quiz=quiz_row.status if quiz_row else "",
            )
        found.append(
            ParticipantProgress(
                reference=client.reference,
                label=enrolment.label or "",
                language=client.language or "",
                channel=client.channel,
                status=enrolment.status,
                enrolled=enrolment.enrolled_at.date(),
                lessons=lessons,
                questions=questions or 0,
            )
        )

    return found


def progress_csv(rows: list[ParticipantProgress], course: Course) -> str:
    """The progress table as CSV: no phone numbers, no message texts."""
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["reference", "label", "language", "channel", "status", "enrolled"]
    for number, lesson in enumerate(course.lessons, start=1):
        header += [
            f"{number}_{lesson.id}_prompt",
            f"{number}_read",
            f"{number}_reflection",
            f"{number}_quiz",
        ]
    header += ["quiz_right", "quiz_answered", "questions"]
    writer.writerow(header)
    for row in rows:
        line: list[Any] = [
            row.reference,
            _safe_cell(row.label),
            row.language,
            row.channel,
            row.status,
            row.enrolled.isoformat(),
        ]
        for number in range(1, len(course.lessons) + 1):
            item = row.lessons[number]
            quiz = (
                f"{item.quiz_right}/{item.quiz_answered}"
                if item.quiz_answered
                else item.quiz
            )
            line += [
                item.prompt,
                "yes" if item.read else "",
                "yes" if item.reflection else "",
                quiz,
            ]
        right, answered = row.quiz_score
        line += [right, answered, row.questions]
        writer.writerow(line)

    return out.getvalue()


def _safe_cell(value: str) -> str:
    # A label typed by a person must not run as a formula in a spreadsheet.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


# Enrolment by a counsellor or teacher ---------------------------------------

NUMBER = re.compile(r"^\+[1-9][0-9]{6,14}$")


def enrol_number(
    session: Session,
    *,
    secret_key: str,
    channel: str,
    number: str,
    language: str,
    group: CourseGroup,
    dialogue: Dialogue,
    channels: dict[str, Channel],
    templates: dict[str, Template],
    by: str,
    label: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[Enrolment, list[int]]:
    """Enrol the person with phone `number` and write their welcome.

    Returns the enrolment and the messages to queue. The welcome carries the
    AI and privacy notice; on WhatsApp, outside the window, it goes as the
    welcome template and the rest waits for the participant's reply.
    """
    from bot.messaging import address_hash

    course = dialogue.flows.course
    if course is None:
        raise CourseError("no course is configured (flows/course.yaml)")
    number = "".join(number.split())
    if channel not in (SMS, WHATSAPP) or not NUMBER.match(number):
        raise CourseError(
            "give the channel (sms or whatsapp) and a number like +358401234567"
        )
    if language not in LANGUAGES_BY_CODE:
        raise CourseError(f"language is one of {', '.join(LANGUAGES_BY_CODE)}")
    now = now or utcnow()
    key = address_hash(secret_key, channel, number)
    client = session.scalars(select(Client).where(Client.address_hash == key)).first()
    if client is None:
        client = Client(channel=channel, address_hash=key, address=number)
        session.add(client)
    client.language = language
    session.flush()
    enrolment, conversation = enrol(
        session, client, group, course, by=by, label=label, now=now
    )
    body = "\n\n".join(
        [course_notice(language, conversation, dialogue), welcome(group, language)]
    )
    written = write_course_message(
        session,
        client,
        conversation,
        body,
        channels,
        templates.get("course_welcome"),
        {"group": group.name},
        now,
    )

    return enrolment, written.queued
