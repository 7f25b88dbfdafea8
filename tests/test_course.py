"""The civic-orientation course: a group in three languages through a week of
lessons on a controllable clock, over the local Twilio server, real RQ workers,
the local SMTP server and the counsellor page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select, update

from bot.accounts import new_account, save_account
from bot.channels import init_app as load_channels
from bot.course import parse_choice
from bot.db import get_db
from bot.models import (
    AuditEntry,
    Client,
    CourseQuestion,
    Enrolment,
    LessonDelivery,
    Message,
)
from tests.conftest import TEST_MAIL_DOMAIN
from tests.factories import message_params, post_signed, whatsapp_params
from tests.helpers import run_worker
from tests.test_casepage import PASSWORD, csrf_of, sign_in
from workers.course import send_lessons

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
HELSINKI = ZoneInfo("Europe/Helsinki")
# A Monday; the group meets on Mondays, Wednesdays and Fridays at 17:00.
MONDAY = dt.date(2027, 3, 1)
OLENA, AMAL, FARAH = "+358401110001", "+358401110002", "+358401110003"
AR_LESSON_SID = "HX" + "a1" * 16
EN_LESSON_SID = "HX" + "e1" * 16


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(
        MONDAY + dt.timedelta(days=day), dt.time(hour, minute), HELSINKI
    )


@pytest.fixture
def course_app(mail_app: Flask, tmp_path: Path) -> Flask:
    """The app with real-looking WhatsApp templates: Arabic and English ones."""
    templates = tmp_path / "whatsapp.yaml"
    templates.write_text(
        f"""
templates:
  course_welcome:
    text: course.template.welcome
    variables: [group]
    content_sid: {{en: HX{"e0" * 16}, ar: HX{"a0" * 16}}}
  course_lesson:
    text: course.template.lesson
    variables: [title, session]
    content_sid: {{en: {EN_LESSON_SID}, ar: {AR_LESSON_SID}}}
  course_quiz:
    text: course.template.quiz
    variables: [title]
    content_sid: {{en: HX{"e2" * 16}, ar: HX{"a2" * 16}}}
""",
        encoding="utf-8",
    )
    mail_app.config["POLKU"] = mail_app.config["POLKU"].with_overrides(
        whatsapp_templates_file=templates
    )
    load_channels(mail_app)
    save_account(
        mail_app.config["POLKU"].accounts,
        new_account("tuula", "Tuula Opettaja", ["integration"], PASSWORD),
    )

    return mail_app


def cli(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def wrote_at(app: Flask, channel: str, number: str, moment: dt.datetime) -> None:
    """Date the participant's messages so far to `moment` of the simulated week."""
    with get_db(app).transaction() as session:
        client_ids = [
            client.id
            for client in session.scalars(select(Client))
            if client.channel == channel and client.address == number
        ]
        session.execute(
            update(Message)
            .where(
                Message.client_id.in_(client_ids),
                Message.direction == "in",
                Message.created_at < local(-30, 0),
            )
            .values(created_at=moment)
        )


def sent_to(twilio, address: str) -> list:  # noqa: ANN001
    return [message for message in twilio.messages if message.to == address]


def deliveries(app: Flask) -> list[tuple[str, int, str, str]]:
    with get_db(app).session() as session:
        rows = session.execute(
            select(
                Client.language,
                LessonDelivery.lesson,
                LessonDelivery.kind,
                LessonDelivery.status,
            )
            .join(Enrolment, Enrolment.id == LessonDelivery.enrolment_id)
            .join(Client, Client.id == Enrolment.client_id)
            .order_by(LessonDelivery.id)
        ).all()
    return [tuple(row) for row in rows]


@SQLITE
def test_a_week_of_lessons_in_three_languages(
    course_app, client, twilio, smtp, tmp_path
):
    app = course_app
    from tests.argos_packages import build_package
    from translations.argos import install_package, preload

    packages = app.config["POLKU"].packages_dir
    for source, target, words in (
        ("uk", "en", {"податкову": "tax"}),
        ("en", "fi", {"tax": "vero"}),
        ("fi", "en", {"Verohallinnosta": "Tax-Administration"}),
        ("en", "uk", {"Tax-Administration": "Податкової"}),
    ):
        install_package(build_package(tmp_path, source, target, words), packages)
    preload()

    teacher = f"opettaja@{TEST_MAIL_DOMAIN}"
    cli(app, "course", "groups", "add", "MIK1", "--name", "Mikkeli, kevät",
        "--team", "integration", "--teacher-email", teacher,
        "--days", "mon,wed,fri", "--time", "17:00",
        "--start", MONDAY.isoformat())  # fmt: skip
    # Olena by SMS in Ukrainian and Amal on WhatsApp in Arabic, enrolled by the
    # teacher; Farah joins herself on WhatsApp with the group's code.
    enrol = ("course", "enrol", "MIK1", "--channel")
    cli(app, *enrol, "sms", "--number", OLENA, "--language", "uk")
    cli(
        app, *enrol, "whatsapp", "--number", AMAL, "--language", "ar", "--label", "Amal"
    )
    twilio.close_window(f"whatsapp:{AMAL}")
    for body in ("COURSE MIK1", "8"):
        post_signed(
            client,
            "/twilio/messages",
            whatsapp_params(From=f"whatsapp:{FARAH}", Body=body),
        )
    run_worker(app)
    wrote_at(app, "whatsapp", FARAH, local(0, 9))

    olena_welcome = "\n".join(m.body for m in sent_to(twilio, OLENA))
    assert "MIK1" not in olena_welcome and "Mikkeli, kevät" in olena_welcome
    assert "ШІ" in olena_welcome  # the AI notice comes first, in Ukrainian
    [amal_welcome] = sent_to(twilio, f"whatsapp:{AMAL}")
    assert amal_welcome.content_sid == "HX" + "a0" * 16  # the welcome template
    assert json.loads(amal_welcome.content_variables) == {"1": "Mikkeli, kevät"}
    farah = [m.body for m in sent_to(twilio, f"whatsapp:{FARAH}")]
    assert "Soomaali" in farah[0]  # the language menu, then notice and welcome
    assert "Mikkeli, kevät" in farah[-1]

    # The week, every 15 minutes; the participants answer on the way.
    written_at: list[dt.datetime] = []
    moment = local(0, 0)
    actions = {
        local(0, 20, 15): "olena answers the quiz",
        local(0, 20, 30): "amal answers the template",
        local(1, 10): "olena asks the teacher",
        local(2, 15): "farah answers the template",
        local(2, 15, 30): "farah reflects",
    }
    while moment < local(7, 0):
        before = len(twilio.messages)
        send_lessons(at=moment.isoformat())
        run_worker(app)
        if len(twilio.messages) > before:
            written_at.append(moment)
        action = actions.get(moment)
        if action == "olena answers the quiz":
            for body in ("2", "1"):
                post_signed(
                    client, "/twilio/messages", message_params(From=OLENA, Body=body)
                )
            run_worker(app)
        elif action == "amal answers the template":
            twilio.open_window(f"whatsapp:{AMAL}")
            post_signed(
                client,
                "/twilio/messages",
                whatsapp_params(From=f"whatsapp:{AMAL}", Body="حسنا"),
            )
            run_worker(app)
            wrote_at(app, "whatsapp", AMAL, moment)
        elif action == "olena asks the teacher":
            question = "Як отримати податкову картку?"
            post_signed(
                client, "/twilio/messages", message_params(From=OLENA, Body=question)
            )
            run_worker(app, timeout=60)
        elif action == "farah answers the template":
            post_signed(
                client,
                "/twilio/messages",
                whatsapp_params(From=f"whatsapp:{FARAH}", Body="Haa"),
            )
            run_worker(app)
            wrote_at(app, "whatsapp", FARAH, moment)
        elif action == "farah reflects":
            post_signed(
                client,
                "/twilio/messages",
                whatsapp_params(
                    From=f"whatsapp:{FARAH}", Body="Waxaan jeclahay dabeecadda"
                ),
            )
            run_worker(app)
            wrote_at(app, "whatsapp", FARAH, moment)
        moment += dt.timedelta(minutes=15)

    # Never at night: everything went between 8:00 and 21:00 Helsinki time.
    assert written_at and all(8 <= moment.hour < 21 for moment in written_at)
    # Three sessions: each participant got each lesson's prompt and quiz once.
    recorded = deliveries(app)
    for language in ("uk", "ar", "so"):
        mine = [
            (lesson, kind) for lang, lesson, kind, _ in recorded if lang == language
        ]
        assert sorted(mine) == sorted(
            (lesson, kind)
            for lesson in (1, 2, 3)
            for kind in ("prompt", "quiz", "reminder")
        ), language

    olena = [m.body for m in sent_to(twilio, OLENA)]
    lesson_one = [body for body in olena if "1/11" in body]
    assert len(lesson_one) == 1 and "Суспільна орієнтація" in lesson_one[0]
    assert sum("2/11" in body for body in olena) == 1
    # Her quiz: scored, explained, the second question, then the score.
    assert any(body.startswith("Правильно") or "Не зовсім" in body for body in olena)

    # Amal was outside WhatsApp's window: the template, never free text,
    # until she answered; then the lesson itself.
    amal = sent_to(twilio, f"whatsapp:{AMAL}")
    first_lesson = amal[1]
    assert first_lesson.content_sid == AR_LESSON_SID
    variables = json.loads(first_lesson.content_variables)
    assert set(variables) == {"1", "2"} and "17:00" in variables["2"]
    released = [m for m in amal if m.content_sid is None]
    # First what waited longest: her welcome with the AI notice, then lesson 1.
    assert "Mikkeli, kevät" in released[0].body and "1/11" in released[1].body
    assert all(m.content_sid for m in amal[: amal.index(released[0])])

    # Olena's question reached the teacher, anonymised, with no phone number.
    [mail] = [m for m in smtp.messages if m["To"] == f"opettaja@{TEST_MAIL_DOMAIN}"]
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "податкову" in body and OLENA not in body and "vero" in body
    with get_db(app).session() as session:
        question = session.scalars(select(CourseQuestion)).one()
    assert question.reference in mail["Subject"] and question.status == "sent"

    # The teacher answers on the page; Olena gets it in Ukrainian.
    page_client = app.test_client()
    sign_in(page_client, "tuula")
    page = page_client.get(f"/counsellor/course/questions/{question.reference}")
    text = page.get_data(as_text=True)
    assert "Як отримати податкову картку?" in text and OLENA not in text
    page_client.post(
        f"/counsellor/course/questions/{question.reference}/reply",
        data={"csrf": csrf_of(text), "text": "Verokortin saat Verohallinnosta"},
    )
    run_worker(app, timeout=60)
    answer = sent_to(twilio, OLENA)[-1].body
    assert answer.startswith("Відповідь вашого викладача (машинний переклад")
    assert "Податкової" in answer and "Verohallinnosta" not in answer

    # Progress: on the page and as CSV, without phone numbers.
    group_page = page_client.get("/counsellor/course/groups/MIK1").get_data(True)
    assert "Amal" in group_page and AMAL not in group_page
    exported = page_client.get("/counsellor/course/groups/MIK1/progress.csv")
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert len(rows) == 3 and all(
        number not in exported.get_data(True) for number in (OLENA, AMAL, FARAH)
    )
    by_language = {row["language"]: row for row in rows}
    assert by_language["uk"]["1_quiz"] == "1/2"  # lesson 1's answers are 2 and 3
    assert by_language["uk"]["questions"] == "1"
    assert by_language["ar"]["1_introduction_prompt"] == "template"
    assert by_language["so"]["2_reflection"] == "yes"
    # No Somali template is configured: outside the window she got the English one.
    farah = sent_to(twilio, f"whatsapp:{FARAH}")
    assert EN_LESSON_SID in [m.content_sid for m in farah]
    with get_db(app).session() as session:
        exports = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "export")
        ).all()
    assert len(exports) == 1

    # Exactly once: the whole week again, and after Redis lost its queues.
    before = len(twilio.messages)
    get_db(app)  # the database is the source of truth
    from bot.queue import get_queue

    get_queue(app).connection.flushdb()
    for day in range(7):
        for hour in range(8, 21):
            send_lessons(at=local(day, hour).isoformat())
    run_worker(app)
    assert len(twilio.messages) == before
    assert deliveries(app) == recorded


def test_quiz_choices_are_read_in_any_script():
    assert [parse_choice(body, 3) for body in ("2", " b ", "٣", "۲", "3)", "C.")] == [
        2,
        2,
        3,
        2,
        3,
        3,
    ]
    assert [parse_choice(body, 3) for body in ("4", "0", "d", "12", "yes")] == [
        None
    ] * 5
