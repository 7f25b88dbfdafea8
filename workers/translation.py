"""Job: translate a conversation's free-text answers into Finnish for the counsellor.

Queued by `handle_inbound` after a free-text answer, on the client's turn; safe
to run again, since answers already translated are left as they are.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.conversation import get_dialogue
from bot.counsellor import translate_answers as translate_conversation
from bot.db import get_db
from bot.models import Message
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
        flow = get_dialogue(app).flows.interview

        return translate_conversation(db, conversation_id, get_translator(app), flow)
