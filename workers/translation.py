"""Job: prepare a conversation for the counsellor: its free-text answers in Finnish
and, once the interview has ended and a model is configured, the summary draft.

Queued by `handle_inbound` after a free-text answer or the interview's end, on
the client's turn; safe to run again: what is done is left as it is.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.conversation import get_dialogue
from bot.counsellor import translate_answers as translate_conversation
from bot.db import get_db
from bot.llm import get_language_model
from bot.models import Message
from bot.summary import draft_summary
from translations.translator import get_translator
from workers import get_app

logger = logging.getLogger(__name__)


def translate_answers(message_id: int) -> int:
    """Translate the answers of the conversation that message `message_id` is in."""
    app = get_app()
    with app.app_context():
        db = get_db()
        with db.session() as session:
            query = select(Message.conversation_id).where(Message.id == message_id)
            conversation_id = session.scalar(query)
        if conversation_id is None:
            logger.info("message %s: no conversation left to translate", message_id)
            return 0
        flows = get_dialogue(app).flows
        translator = get_translator(app)
        translated = translate_conversation(
            db, conversation_id, translator, flows.interview
        )
        model = get_language_model(app)
        if model is not None:
            # After translating: the model reads the answers in Finnish.
            draft_summary(db, conversation_id, model, flows)

        return translated
