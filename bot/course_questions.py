"""A course participant's question for the teacher: put into Finnish, e-mailed to
the group's teacher once, and shown on the counsellor page with the real words.

`workers.course.send_question` runs `prepare` and `compose`; the page's reply
goes back through the counsellor-reply path (translated locally, then sent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.conversation import anonymise_for
from bot.db import Database
from bot.handoff import redact
from bot.models import (
    Client,
    Conversation,
    CourseGroup,
    CourseQuestion,
    Enrolment,
    Message,
    utcnow,
)
from translations import LANGUAGES_BY_CODE, counsellor_text
from translations.translator import Translator, restore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuestionView:
    """A question as the teacher reads it."""

    reference: str
    group: CourseGroup
    client: Client
    conversation: Conversation | None
    words: str
    finnish: str | None
    language: str
    lesson: int | None
    status: str


def load(session: Session, question_id: int) -> QuestionView | None:
    """Return the question with what it hangs on; None once erased."""
    question = session.get(CourseQuestion, question_id)
    if question is None:
        return None
    enrolment = session.get(Enrolment, question.enrolment_id)
    message = session.get(Message, question.message_id) if question.message_id else None
    if enrolment is None or message is None:
        return None
    client = session.get(Client, enrolment.client_id)
    group = session.get(CourseGroup, enrolment.group_id)
    conversation = (
        session.get(Conversation, enrolment.conversation_id)
        if enrolment.conversation_id
        else None
    )
    if client is None or group is None:
        return None
    language = client.language or "fi"

    return QuestionView(
        reference=question.reference,
        group=group,
        client=client,
        conversation=conversation,
        words=message.body,
        finnish=question.finnish,
        language=LANGUAGES_BY_CODE[language].english_name
        if language in LANGUAGES_BY_CODE
        else language,
        lesson=question.lesson,
        status=question.status,
    )


def prepare(db: Database, question_id: int, translator: Translator) -> None:
    """Translate the question into Finnish once; the real words come back in.

    Anonymised before the translator sees it, like every text for a model.
    A question in Finnish, or one that cannot be translated, is kept as it is.
    """
    with db.transaction() as session:
        question = session.get(CourseQuestion, question_id)
        view = load(session, question_id)
        if question is None or view is None or question.finnish is not None:
            return
        language = view.client.language or "fi"
        conversation = view.conversation
        if language == "fi" or conversation is None:
            question.finnish = view.words if language == "fi" else ""
            return
        values: dict[str, str] = {}
        anonymised = anonymise_for(conversation, view.words, values)
    translation = translator.translate(anonymised, language, "fi")
    finnish = ""
    if translation.translated and translation.text:
        finnish = restore(translation.text, translation.text, values) or ""
    with db.transaction() as session:
        question = session.get(CourseQuestion, question_id)
        if question is not None and question.finnish is None:
            question.finnish = finnish
    logger.info("course question %s: translated: %s", question_id, bool(finnish))


def compose(
    session: Session, question_id: int, sender: str, base_url: str
) -> EmailMessage | None:
    """The teacher's e-mail: the question in Finnish and in the participant's
    words, both anonymised, and where to answer; no contact details."""
    view = load(session, question_id)
    if view is None:
        return None
    conversation = view.conversation
    words = redact(conversation, view.words) if conversation else view.words
    finnish = view.finnish or ""
    if conversation is not None and finnish:
        finnish = redact(conversation, finnish)

    def t(key: str, **values: str | int) -> str:
        return counsellor_text(f"counsellor.course.{key}", **values)

    link = f"{base_url.rstrip('/')}/counsellor/course/questions/{view.reference}"
    lines = [
        t("mail_intro", group=view.group.name, lesson=view.lesson or "-"),
        "",
        f"{t('mail_finnish')}: {finnish or t('mail_untranslated')}",
        f"{t('mail_own_words', language=view.language)}: {words}",
        "",
        t("mail_answer", link=link),
        t("mail_privacy", reference=view.reference),
    ]
    message = EmailMessage()
    message["Subject"] = t(
        "mail_subject", group=view.group.name, reference=view.reference
    )
    message["From"] = sender
    message["To"] = view.group.teacher_email
    message["Date"] = format_datetime(utcnow())
    message["Auto-Submitted"] = "auto-generated"
    message.set_content("\n".join(lines))

    return message


def pending_questions(session: Session, group_ids: list[int]) -> list[CourseQuestion]:
    """The questions of these groups that no teacher has answered yet."""
    query = (
        select(CourseQuestion)
        .join(Enrolment, Enrolment.id == CourseQuestion.enrolment_id)
        .where(
            Enrolment.group_id.in_(group_ids),
            CourseQuestion.answered_at.is_(None),
        )
        .order_by(CourseQuestion.id)
    )

    return list(session.scalars(query))
