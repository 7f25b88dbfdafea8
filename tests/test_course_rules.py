"""The course's rules without the week: when messages fall due, the course and
template files, pausing and stopping, erasure, read receipts, and two schedulers
writing at once (on both databases)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import func, select

from bot.channels import get_channels, get_templates
from bot.channels.templates import load_templates
from bot.conversation import get_dialogue
from bot.course import create_group, enrol_number, write_due
from bot.db import get_db
from bot.errors import ConfigError
from bot.models import Client, Enrolment, LessonDelivery, Message
from bot.retention import apply_retention
from flows.course import PROMPT, QUIZ, Schedule, due_times, load_course
from flows.model import FlowError
from tests.factories import message_params, post_signed
from tests.helpers import run_worker

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
HELSINKI = ZoneInfo("Europe/Helsinki")
NUMBER = "+358401110009"
MONDAY = dt.date(2027, 3, 1)


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(
        MONDAY + dt.timedelta(days=day), dt.time(hour, minute), HELSINKI
    )


def course_of(app: Flask):  # noqa: ANN201
    return get_dialogue(app).flows.course


def test_messages_never_fall_due_at_night():
    course = load_course(Path("flows/course.yaml"))
    # Sessions at 9:00 and at 19:00: the first one's prompt goes the evening
    # before, the second one's quiz the next morning.
    early = Schedule.parse("mon", "09:00", "Europe/Helsinki", MONDAY)
    late = Schedule.parse("mon", "19:00", "Europe/Helsinki", MONDAY)
    [prompt] = [
        d for d in due_times(course, early) if d.lesson == 1 and d.kind == PROMPT
    ]
    [quiz] = [d for d in due_times(course, late) if d.lesson == 1 and d.kind == QUIZ]
    assert prompt.at == local(-1, 20)
    assert prompt.until == local(0, 9)
    assert quiz.at == local(1, 9)
    for schedule in (early, late):
        for due in due_times(course, schedule):
            assert 8 <= due.at.astimezone(HELSINKI).hour < 21


def test_sessions_keep_their_local_time_across_daylight_saving():
    schedule = Schedule.parse(
        "sat,sun", "17:00", "Europe/Helsinki", dt.date(2027, 3, 27)
    )
    saturday, sunday = schedule.sessions(2)
    # Clocks went forward in the night: the same 17:00, one hour less apart.
    assert (saturday.hour, sunday.hour) == (17, 17)
    assert sunday.astimezone(dt.UTC) - saturday.astimezone(dt.UTC) == dt.timedelta(
        hours=23
    )


@pytest.mark.parametrize(
    ("days", "time", "zone", "message"),
    [
        ("mon,fun", "17:00", "Europe/Helsinki", "weekdays"),
        ("mon", "5pm", "Europe/Helsinki", "like 17:00"),
        ("mon", "17:00", "Europe/Mikkeli", "unknown time zone"),
    ],
)
def test_a_wrong_schedule_is_refused_with_its_reason(days, time, zone, message):
    with pytest.raises(ValueError, match=message):
        Schedule.parse(days, time, zone, MONDAY)


def test_the_course_file_is_checked(tmp_path):
    path = tmp_path / "course.yaml"
    path.write_text(
        "lessons:\n  - id: health\n    prompts: 4\n    quiz:\n"
        "      - {answer: 4, options: 3}\n",
        encoding="utf-8",
    )
    with pytest.raises(FlowError, match="answer is the right option, 1 to 3"):
        load_course(path)
    path.write_text(
        "lessons:\n  - id: no_such_lesson\n    prompts: 2\n    quiz:\n"
        "      - {answer: 1, options: 3}\n",
        encoding="utf-8",
    )
    with pytest.raises(FlowError, match="course.no_such_lesson.title"):
        load_course(path)
    assert load_course(tmp_path / "absent.yaml") is None


def test_every_marked_fact_names_a_text():
    course = load_course(Path("flows/course.yaml"))
    assert len(course.lessons) == 11
    marked = [part for lesson in course.lessons for part in lesson.check_locally]
    assert marked, "local facts are marked for the city to check"


def test_a_wrong_content_sid_is_refused(tmp_path):
    path = tmp_path / "whatsapp.yaml"
    path.write_text(
        "templates:\n  course_lesson:\n    text: course.template.lesson\n"
        "    content_sid: {uk: MG123}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="is not a ContentSid"):
        load_templates(path)
    # The shipped placeholders are known as such: no template is used.
    shipped = load_templates(Path("flows/whatsapp.yaml"))
    assert shipped["course_lesson"].sid_for("uk") is None


def add_group(app: Flask, start: dt.date = MONDAY) -> None:
    with get_db(app).transaction() as session:
        create_group(
            session,
            code="MIK2",
            name="Mikkeli",
            team="integration",
            teacher_email="opettaja@example.fi",
            days="mon,wed",
            time="17:00",
            start=start,
        )


def enrol(
    app: Flask, channel: str = "sms", now: dt.datetime | None = None
) -> list[int]:
    from bot.course import find_group

    with get_db(app).transaction() as session:
        _, message_ids = enrol_number(
            session,
            secret_key=app.config["POLKU"].secret_key,
            channel=channel,
            number=NUMBER,
            language="en",
            group=find_group(session, "MIK2"),
            dialogue=get_dialogue(app),
            channels=get_channels(app),
            templates=get_templates(app),
            by="test",
            now=now or local(-1, 12),
        )
    return message_ids


def write(app: Flask, moment: dt.datetime):  # noqa: ANN201
    return write_due(
        get_db(app), course_of(app), get_channels(app), get_templates(app), moment
    )


def kinds(app: Flask) -> list[tuple[int, str, str]]:
    with get_db(app).session() as session:
        rows = session.execute(
            select(
                LessonDelivery.lesson, LessonDelivery.kind, LessonDelivery.status
            ).order_by(LessonDelivery.id)
        ).all()
    return [tuple(row) for row in rows]


def test_two_schedulers_at_once_write_each_message_once(app):
    add_group(app)
    welcome = enrol(app)
    moment = local(0, 14)
    results = []

    def run() -> None:
        results.append(write(app, moment))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kinds(app) == [(1, "prompt", "sent")]
    written = [len(result.message_ids) for result in results]
    assert sorted(written)[:-1] == [0, 0, 0] and written != [0, 0, 0, 0]
    with get_db(app).session() as session:
        stored = session.scalar(
            select(func.count(Message.id)).where(Message.purpose == "course")
        )
    assert stored == len(welcome) + sum(written)


@SQLITE
def test_a_paused_participant_misses_lessons_and_start_brings_them_back(
    app, client, twilio
):
    from bot.messaging import queue_outbound
    from bot.queue import get_queue

    add_group(app)
    queue_outbound(get_db(app), get_queue(app), enrol(app), (1,))
    run_worker(app)
    # The welcome tells that an AI writes, and that the teacher is a person.
    assert "pass your questions to your teacher" in twilio.bodies_to(NUMBER)[0]
    post_signed(client, "/twilio/messages", message_params(From=NUMBER, Body="pause"))
    run_worker(app)
    assert twilio.bodies_to(NUMBER)[-1].startswith("The lessons are paused")
    for moment in (local(0, 14), local(0, 20), local(1, 20)):
        assert write(app, moment).message_ids == []
    post_signed(client, "/twilio/messages", message_params(From=NUMBER, Body="START"))
    run_worker(app)
    assert twilio.bodies_to(NUMBER)[-1].startswith("The lessons continue")
    # The interview's commands and a bare "ok" say what the course offers,
    # instead of going to the teacher as a question.
    for body in ("BACK", "ok"):
        post_signed(client, "/twilio/messages", message_params(From=NUMBER, Body=body))
        run_worker(app)
        assert twilio.bodies_to(NUMBER)[-1].startswith("You are in the civic")
    # Lesson 1's session passed while paused: its prompt and the reminder are
    # recorded as missed, never sent late; its quiz may still go for 48 hours.
    written = write(app, local(2, 14))
    assert written.message_ids
    assert [row[:2] for row in kinds(app)] == [
        (1, "prompt"), (1, "quiz"), (1, "reminder"), (2, "prompt")
    ]  # fmt: skip
    assert [row[2] for row in kinds(app)] == ["missed", "sent", "missed", "sent"]


@SQLITE
def test_stop_ends_the_lessons_and_delete_erases_the_enrolment(app, client, twilio):
    add_group(app)
    enrol(app)
    run_worker(app)
    post_signed(client, "/twilio/messages", message_params(From=NUMBER, Body="STOP"))
    run_worker(app)
    assert write(app, local(0, 14)).message_ids == []

    for body in ("DELETE", "YES"):
        post_signed(client, "/twilio/messages", message_params(From=NUMBER, Body=body))
    run_worker(app)
    with get_db(app).session() as session:
        assert session.scalars(select(Enrolment)).all() == []
        assert session.scalars(select(Client)).all() == []


@SQLITE
def test_an_unknown_group_code_gets_a_clear_answer(app, client, twilio):
    add_group(app)
    post_signed(
        client, "/twilio/messages", message_params(From=NUMBER, Body="KURSSI XYZ9")
    )
    run_worker(app)
    [reply] = twilio.bodies_to(NUMBER)
    assert "XYZ9" in reply and "opettaja" in reply.lower()


@SQLITE
def test_whatsapp_read_receipts_show_in_progress(app, client, twilio):
    from bot.course import find_group, progress

    add_group(app)
    enrol(app, "whatsapp")
    # She wrote this morning: lesson 1 goes as free text.
    post_signed(
        client,
        "/twilio/messages",
        message_params(
            From=f"whatsapp:{NUMBER}", To="whatsapp:+358402220000", Body="hi"
        ),
    )
    run_worker(app)
    with get_db(app).transaction() as session:
        for message in session.scalars(
            select(Message).where(Message.direction == "in")
        ):
            message.created_at = local(0, 9)
    queued = write(app, local(0, 14)).message_ids
    assert queued
    from bot.messaging import queue_outbound
    from bot.queue import get_queue

    queue_outbound(get_db(app), get_queue(app), queued, (1,))
    run_worker(app)
    with get_db(app).session() as session:
        delivery = session.scalars(select(LessonDelivery)).one()
        sid = session.get(Message, delivery.message_id).provider_sid
    callback = {
        "MessageSid": sid,
        "MessageStatus": "read",
        "AccountSid": message_params()["AccountSid"],
    }
    assert post_signed(client, "/twilio/status", callback).status_code in (200, 204)
    with get_db(app).session() as session:
        group = find_group(session, "MIK2")
        [row] = progress(session, group, course_of(app))
    assert row.lessons[1].read and row.lessons[1].prompt == "sent"


@SQLITE
def test_enrolments_go_after_their_retention_period(app):
    add_group(app)
    enrol(app)
    write(app, local(0, 14))
    later = local(0, 14) + dt.timedelta(days=400)
    with get_db(app).transaction() as session:
        # Still writing: the client stays, the year-old course goes.
        session.scalars(select(Client)).one().last_seen_at = later
    counts = apply_retention(get_db(app), later)
    assert counts["lesson_progress"] == 1
    with get_db(app).session() as session:
        assert session.scalars(select(LessonDelivery)).all() == []
