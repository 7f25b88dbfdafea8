"""Jobs: send a handoff's e-mail to its team, exactly once; and put a counsellor's
Finnish reply into the client's language before it is sent.

Queued by `handle_inbound` when the interview ends or the client asks for a
person, and again by the sweep for a handoff Redis lost. It first translates
the answers and, with a model, drafts the summary; then claims the handoff,
sends, and marks it sent. A retried or duplicated job finds it sent and stops.
"""

from __future__ import annotations

import logging

from rq import get_current_job
from sqlalchemy import select

from bot import metrics
from bot.channels import get_channels
from bot.conversation import COURSE, anonymise_for, get_dialogue
from bot.counsellor import locked_conversation, translate_answers
from bot.db import get_db
from bot.handoff import claim, compose, mark_failed, mark_sent, route
from bot.llm import get_language_model
from bot.mail import MailError, get_mailer
from bot.messaging import COUNSELLOR, TRANSLATING, queue_outbound, write_replies
from bot.models import Client, Conversation, Handoff, Message
from bot.queue import get_queue
from bot.summary import draft_summary
from translations import text
from translations.translator import get_translator
from workers import get_app

logger = logging.getLogger(__name__)


def send_handoff(handoff_id: int) -> bool:
    """Send handoff `handoff_id`'s e-mail; True if this job sent it.

    Raises `MailError` while retries are left, so RQ tries again with the
    configured backoff; the last failure marks the handoff failed and alerts
    the operator in the log.
    """
    app = get_app()
    with app.app_context():
        db = get_db()
        flows = get_dialogue(app).flows
        with db.session() as session:
            handoff = session.get(Handoff, handoff_id)
            if handoff is None:
                logger.info("handoff %s: gone (erased); nothing to send", handoff_id)
                return False
            conversation_id, sent = handoff.conversation_id, handoff.status == "sent"
        if sent:
            return False
        if conversation_id is None:
            # Erased before the e-mail went: there is nothing left to pass on.
            mark_failed(db, handoff_id, "client data erased", final=True)
            return False
        # The counsellors read the answers in Finnish: translate first. Both
        # leave finished work alone, so a retry costs little.
        translate_answers(db, conversation_id, get_translator(app), flows.interview)
        model = get_language_model(app)
        if model is not None:
            draft_summary(db, conversation_id, model, flows)

        if not claim(db, handoff_id):
            return False
        try:
            with db.transaction() as session:
                handoff = session.get(Handoff, handoff_id)
                conversation = locked_conversation(session, conversation_id)
                client = session.scalars(
                    select(Client).where(Client.id == handoff.client_id)
                ).one()
                team, reference = route(flows, handoff), handoff.reference
                message = compose(
                    conversation,
                    client,
                    handoff,
                    flows,
                    app.config["POLKU"].mail_from,
                    team,
                )
            get_mailer(app).send(message, reference)
        except MailError as exc:
            metrics.count("polku_failures_total", kind="handoff_mail")
            mark_failed(db, handoff_id, str(exc), final=_final_attempt())
            raise
        except Exception as exc:
            mark_failed(db, handoff_id, type(exc).__name__, final=_final_attempt())
            raise
        mark_sent(db, handoff_id)

    return True


def _final_attempt() -> bool:
    job = get_current_job()

    return job is None or not job.retries_left


def translate_reply(message_id: int) -> int:
    """Put counsellor reply `message_id` into the client's language and queue it.

    Anonymised before translating, the values put back after. A reply that
    cannot be translated goes out in Finnish, with a line in the client's
    language saying so. Returns the number of messages queued; 0 if done.
    """
    app = get_app()
    settings = app.config["POLKU"]
    with app.app_context():
        db = get_db()
        with db.transaction() as session:
            draft = session.get(Message, message_id)
            if draft is None or draft.status != TRANSLATING:
                return 0
            conversation = locked_conversation(session, draft.conversation_id)
            client = session.get(Client, draft.client_id)
            language = client.language or "fi"
            # A course teacher's answer is headed as one.
            who = (
                "course.teacher_reply"
                if conversation.stage == COURSE
                else ("counsellor_reply")
            )
            values: dict[str, str] = {}
            finnish = draft.body
            anonymised = anonymise_for(conversation, finnish, values)
        translated = get_translator(app).for_client(anonymised, "fi", language, values)
        if translated is not None:
            heading = text(f"{who}.translated", language)
            body = f"{heading}\n{translated}"
        else:
            heading = text(f"{who}.untranslated", language)
            body = f"{heading}\n{finnish}"
        with db.transaction() as session:
            draft = session.get(Message, message_id)
            if draft is None or draft.status != TRANSLATING:
                return 0
            client = session.get(Client, draft.client_id)
            conversation = session.get(Conversation, draft.conversation_id)
            replies = write_replies(
                session, client, conversation, [body], get_channels(app), COUNSELLOR
            )
            session.delete(draft)
            reply_ids = [reply.id for reply in replies]
        queue_outbound(db, get_queue(), reply_ids, settings.retry_intervals)
    logger.info(
        "message %s: counsellor reply queued (translated: %s)",
        message_id,
        translated is not None,
    )

    return len(reply_ids)
