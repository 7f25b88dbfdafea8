"""Jobs of the civic-orientation course: write the lesson messages that fell due,
and e-mail a participant's question to the group's teacher, once.

`send_lessons` runs on the scheduler every few minutes; what it writes comes
from the database, so a lost or repeated run changes nothing. `send_question`
is queued by the participant's turn, and again by the sweep while pending.
"""

from __future__ import annotations

import datetime as dt
import logging

from rq import get_current_job

from bot import metrics
from bot.channels import get_channels, get_templates
from bot.conversation import get_dialogue
from bot.course import write_due
from bot.course_questions import compose, prepare
from bot.db import get_db
from bot.handoff import claim, mark_failed, mark_sent
from bot.mail import MailError, get_mailer
from bot.messaging import queue_outbound
from bot.models import CourseQuestion
from bot.queue import get_queue
from translations.translator import get_translator
from workers import get_app

logger = logging.getLogger(__name__)


def send_lessons(at: str | None = None) -> int:
    """Write and queue the lesson messages due by now (or by `at`, ISO 8601).

    Returns the number of messages queued.
    """
    app = get_app()
    settings = app.config["POLKU"]
    course = get_dialogue(app).flows.course
    if course is None:
        return 0
    now = dt.datetime.fromisoformat(at) if at else None
    with app.app_context():
        db = get_db()
        written = write_due(db, course, get_channels(app), get_templates(app), now)
        queue_outbound(db, get_queue(), written.message_ids, settings.retry_intervals)

    return len(written.message_ids)


def send_question(question_id: int) -> bool:
    """E-mail question `question_id` to its group's teacher; True if this job did.

    Raises `MailError` while retries are left; the teacher also finds the
    question on the counsellor page, mailed or not.
    """
    app = get_app()
    settings = app.config["POLKU"]
    with app.app_context():
        db = get_db()
        prepare(db, question_id, get_translator(app))
        if not claim(db, question_id, CourseQuestion):
            return False
        try:
            with db.transaction() as session:
                message = compose(
                    session,
                    question_id,
                    settings.mail_from,
                    settings.public_base_url or "",
                )
            if message is None:
                mark_failed(db, question_id, "erased", final=True, model=CourseQuestion)
                return False
            get_mailer(app).send(message, f"question-{question_id}")
        except MailError as exc:
            metrics.count("polku_failures_total", kind="question_mail")
            mark_failed(db, question_id, str(exc), final=_final(), model=CourseQuestion)
            raise
        mark_sent(db, question_id, CourseQuestion)

    return True


def _final() -> bool:
    job = get_current_job()

    return job is None or not job.retries_left
