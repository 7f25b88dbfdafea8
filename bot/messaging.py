"""Messages in and out: store an inbound text, turn it into replies, deliver them.

The webhooks call `receive` and `queue_inbound`; the worker calls `answer` and
`queue_outbound`, then `deliver`; status callbacks call `record_status`. Every
step is idempotent, so a retried webhook or job, or the sweep, never answers a
message twice.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from rq import Queue
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import audit, logs, metrics
from bot.channels import SMS, WEB, WHATSAPP, Channel
from bot.conversation import (
    DATA_SUMMARY,
    ERASE,
    HANDOFF,
    PRIVACY_REPLY,
    TRANSLATE,
    Dialogue,
    Stored,
    client_notice,
    respond,
)
from bot.course import (
    CourseTurn,
    erase_enrolments,
    has_held,
    record_read,
    release_held,
)
from bot.db import Database
from bot.errors import ChannelError, RecipientOptedOutError
from bot.handoff import FINISHED, PERSON_REQUESTED, open_handoff
from bot.models import Client, Conversation, Message, utcnow
from bot.queue import enqueue_inbound, enqueue_send
from bot.segments import count_segments, split_reply

logger = logging.getLogger(__name__)

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
INBOUND, OUTBOUND = "in", "out"
RECEIVED, PROCESSED, IGNORED = "received", "processed", "ignored"
# Over the sender's inbound limit (bot/limits.py): kept for the counsellor,
# never answered, never queued again by the sweep.
LIMITED = "limited"
PRIVACY = "privacy"
# A counsellor's reply, written in Finnish: held back until the worker has
# put it into the client's language, then queued like any reply.
COUNSELLOR, TRANSLATING = "counsellor", "translating"
PHONE_CHANNELS = frozenset({SMS, WHATSAPP})
QUEUED, SENDING, SENT, FAILED, SUPPRESSED = (
    "queued",
    "sending",
    "sent",
    "failed",
    "suppressed",
)
# Not sent, for good: SMS to a country SMS_ALLOWED_COUNTRY_CODES leaves out.
REFUSED = "refused"
# Twilio's outbound statuses in the order they happen: a late callback never
# moves a message back, and a status Twilio does not document is not stored.
STATUS_RANK = {
    QUEUED: 0,
    "accepted": 1,
    "scheduled": 1,
    SENDING: 1,
    SENT: 2,
    "delivered": 3,
    "undelivered": 3,
    "partially_delivered": 3,
    FAILED: 3,
    "canceled": 3,
    "read": 4,
}


@dataclass(frozen=True)
class Answered:
    """What answering one message wrote, and what it leaves for other jobs."""

    reply_ids: list[int]
    client_id: int | None = None
    translate: bool = False
    # A case opened for the counsellors, whose e-mail is to be sent.
    handoff_id: int | None = None
    # A course participant's question, whose e-mail to the teacher is to be sent.
    question_id: int | None = None


@dataclass(frozen=True)
class Hold:
    """Why a reply is not handed to its channel now: postponed, or `refused`."""

    reason: str
    refused: bool = False


# Asked before each send; None lets the reply go (bot/limits.py makes one).
SendGate = Callable[[Message, Client], Hold | None]


@dataclass(frozen=True)
class Inbound:
    """What a channel hands over for one inbound message."""

    channel: str
    address: str
    body: str
    provider_sid: str
    media_count: int = 0


def clean_text(body: str) -> str:
    """Drop NUL characters and lone surrogates: no database stores them in text.

    A surrogate can only arrive escaped in JSON (the web chat); it becomes the
    replacement character, as any other undecodable input does.
    """
    cleaned = body.replace("\x00", "")
    if LONE_SURROGATE.search(cleaned):
        cleaned = LONE_SURROGATE.sub("\ufffd", cleaned)

    return cleaned


def address_hash(secret_key: str, channel: str, address: str) -> str:
    """Return the keyed hash that finds a client without storing a search key."""
    key = hashlib.sha256(b"polku-address:" + secret_key.encode()).digest()
    digest = hmac.new(key, f"{channel}:{address}".encode(), hashlib.sha256)

    return digest.hexdigest()


def receive(db: Database, secret_key: str, inbound: Inbound) -> tuple[Message, bool]:
    """Store `inbound` once; return the message and whether it is new.

    A second delivery with the same provider id (Twilio retries webhooks)
    returns the stored message and False. The unique constraint decides, so the
    usual case costs one transaction.
    """
    client_key = address_hash(secret_key, inbound.channel, inbound.address)
    for attempt in range(2):
        try:
            with db.transaction() as session:
                client = _client_for(session, client_key, inbound)
                message = Message(
                    client_id=client.id,
                    direction=INBOUND,
                    channel=inbound.channel,
                    provider_sid=inbound.provider_sid,
                    body=inbound.body,
                    media_count=inbound.media_count,
                    status=RECEIVED,
                )
                session.add(message)
                language = client.language
        except IntegrityError:
            existing = _find_by_sid(db, inbound.provider_sid)
            if existing is not None:
                return existing, False
            # Another request created this client at the same moment: go again.
            if attempt:
                raise
            continue
        break

    logger.info("message %s: received from client %s", message.id, message.client_id)
    metrics.count(
        "polku_messages_received_total",
        channel=inbound.channel,
        language=metrics.language_label(language),
    )

    return message, True


def _find_by_sid(db: Database, provider_sid: str) -> Message | None:
    with db.session() as session:
        query = select(Message).where(Message.provider_sid == provider_sid)
        return session.scalars(query).one_or_none()


def _client_for(session: Session, client_key: str, inbound: Inbound) -> Client:
    query = select(Client).where(Client.address_hash == client_key)
    client = session.scalars(query).one_or_none()
    if client is None:
        client = Client(
            channel=inbound.channel, address_hash=client_key, address=inbound.address
        )
        session.add(client)
    client.last_seen_at = utcnow()
    # Writing again after asking for erasure: the old data is gone already,
    # and the new conversation must not be deleted with the confirmation.
    client.erasing_at = None
    session.flush()

    return client


def pending_inbound(db: Database, message_id: int) -> list[int]:
    """Return the client's unanswered messages up to `message_id`, oldest first.

    A job answers these rather than only its own message, so that a message
    whose job is delayed (a retry, a lost job) is still answered before later ones.
    """
    with db.session() as session:
        target = session.get(Message, message_id)
        if target is None or target.direction != INBOUND:
            logger.warning("message %s: not an inbound message; skipped", message_id)
            return []
        query = (
            select(Message.id)
            .where(
                Message.client_id == target.client_id,
                Message.direction == INBOUND,
                Message.status == RECEIVED,
                Message.id <= message_id,
            )
            .order_by(Message.id)
        )

        return list(session.scalars(query))


def answer(
    db: Database,
    message_id: int,
    channels: dict[str, Channel],
    dialogue: Dialogue,
    secret_key: str = "",
    max_chars: int | None = None,
) -> Answered:
    """Answer one inbound message; return the replies written and what follows.

    The conversation's new state, the replies and the message's new status are
    committed together; a message answered before is skipped, so running this
    twice writes no second answer. Only the first `max_chars` characters are
    read (the message stays whole), and the client is told so.
    """
    with db.transaction() as session:
        client_id = session.scalar(
            select(Message.client_id).where(Message.id == message_id)
        )
        if client_id is None:
            return Answered([])
        client = _lock_client(session, client_id)
        # Read the message after taking the client's lock: its status is current.
        message = session.get(Message, message_id, populate_existing=True)
        if message is None or message.status != RECEIVED:
            return Answered([])

        conversation = _current_conversation(session, client)
        logs.bind_conversation(conversation.id)
        events: list[str] = []
        course = CourseTurn(session, message.id, held=has_held(session, client))
        body, cut = _readable(message, max_chars)
        texts = respond(
            client,
            conversation,
            body,
            dialogue,
            media_count=message.media_count,
            events=events,
            stored=lambda: _stored(session, client),
            course=course,
        )
        if cut and texts:
            notice = client_notice("limit.long_message", client.language, count=cut)
            texts.insert(0, notice)
        purpose = PRIVACY if PRIVACY_REPLY in events or ERASE in events else None
        if ERASE in events:
            erase_client_data(session, client, secret_key)
            replies = write_replies(session, client, None, texts, channels, purpose)
            return Answered([reply.id for reply in replies], client_id)
        if DATA_SUMMARY in events:
            audit.record(
                session,
                actor="client",
                action=audit.DATA_SUMMARY,
                subject=client.reference,
                record_class="message",
                reason="the client asked what is stored (MY DATA)",
            )
        handoff_id = None
        if HANDOFF in events and dialogue.flows.teams is not None:
            reason = (conversation.state or {}).get("outcome", {}).get("reason")
            handoff = open_handoff(
                session,
                client,
                conversation,
                dialogue.flows.teams,
                FINISHED if reason == "finished" else PERSON_REQUESTED,
            )
            handoff_id = handoff.id if handoff.sent_at is None else None
        message.status = PROCESSED if texts or not client.opted_out else IGNORED
        message.conversation_id = conversation.id
        message.processed_at = utcnow()
        # WhatsApp's window is open again: what waited for it goes first.
        released = release_held(session, client) if not client.opted_out else []
        conversation = _current_conversation(session, client)
        replies = write_replies(session, client, conversation, texts, channels, purpose)
    logger.info("message %s: answered with %d replies", message_id, len(texts))

    return Answered(
        [*released, *(reply.id for reply in replies)],
        client_id,
        TRANSLATE in events,
        handoff_id,
        course.question_id,
    )


def _readable(message: Message, max_chars: int | None) -> tuple[str, int]:
    """Return the part of `message` to read, and how long it is if it was cut.

    Reading a long text costs the anonymiser, detection and translation time
    that grows with its length; the whole text stays stored for the counsellor.
    """
    if not max_chars or len(message.body) <= max_chars:
        return message.body, 0
    logger.info(
        "message %s: %d characters, read the first %d",
        message.id,
        len(message.body),
        max_chars,
    )
    metrics.count("polku_limited_total", kind="message_length", channel=message.channel)

    return message.body[:max_chars], max_chars


def mark_limited(
    db: Database,
    message_id: int,
    notice: str | None,
    channels: dict[str, Channel],
    contact: str = "",
) -> list[int]:
    """Keep inbound `message_id` unanswered: it is over its sender's limit.

    With a `notice` (a catalogue key) the client is told, in their language;
    return the ids of the replies written, for the caller to queue.
    """
    with db.transaction() as session:
        message = session.get(Message, message_id)
        if message is None or message.status != RECEIVED:
            return []
        # No client lock: nothing here depends on the conversation's state.
        client = session.get(Client, message.client_id)
        conversation = session.scalars(
            select(Conversation)
            .where(Conversation.client_id == client.id, Conversation.ended_at.is_(None))
            .order_by(Conversation.id.desc())
            .limit(1)
        ).first()
        message.conversation_id = conversation.id if conversation else None
        _set_status(message, LIMITED)
        if notice is None or client.opted_out:
            return []
        text = client_notice(notice, client.language, contact=contact)
        replies = write_replies(session, client, conversation, [text], channels)

        return [reply.id for reply in replies]


def _stored(session: Session, client: Client) -> Stored:
    query = select(func.count(Message.id), func.min(Message.created_at)).where(
        Message.client_id == client.id
    )
    count, first = session.execute(query).one()

    return Stored(messages=count, since=first)


def erase_client_data(session: Session, client: Client, secret_key: str) -> None:
    """Delete the client's messages and conversations, and the same number's
    client on the other Twilio channel; keep this row until the confirmation
    has been sent, then `deliver` deletes it too.
    """
    erase_enrolments(session, client)
    session.execute(delete(Message).where(Message.client_id == client.id))
    session.execute(delete(Conversation).where(Conversation.client_id == client.id))
    # SMS and WhatsApp from one number are two clients; DELETE means both.
    for other in PHONE_CHANNELS - {client.channel}:
        if client.channel not in PHONE_CHANNELS:
            break
        key = address_hash(secret_key, other, client.address)
        sibling = session.scalars(
            select(Client).where(Client.address_hash == key)
        ).first()
        if sibling is not None:
            session.delete(sibling)
            logger.info("client %s: erased with client %s", sibling.id, client.id)
    audit.record(
        session,
        actor="client",
        action=audit.ERASURE,
        subject=client.reference,
        record_class="message, interview_answers, lesson_progress, client",
        reason="the client asked to delete their data (DELETE)",
    )
    logger.info("client %s: data erased on request", client.id)


def record_inbound_failure(db: Database, message_id: int, *, final: bool) -> None:
    """Count a failed try at answering a message; on the `final` one, give up.

    A message given up on is marked failed, so the sweep stops queueing it and
    the client's later messages are answered.
    """
    with db.transaction() as session:
        message = session.get(Message, message_id)
        if message is None or message.status != RECEIVED:
            return
        message.attempts += 1
        if final:
            _set_status(message, FAILED)
    logger.warning("message %s: answering failed (final: %s)", message_id, final)


def _lock_client(session: Session, client_id: int) -> Client:
    # FOR UPDATE serialises two workers on one client in PostgreSQL; SQLite
    # ignores it and serialises every writer anyway.
    query = select(Client).where(Client.id == client_id).with_for_update()

    return session.scalars(query).one()


def _current_conversation(session: Session, client: Client) -> Conversation:
    query = (
        select(Conversation)
        .where(Conversation.client_id == client.id, Conversation.ended_at.is_(None))
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    conversation = session.scalars(query).first()
    if conversation is None:
        conversation = Conversation(client_id=client.id, stage="new", state={})
        session.add(conversation)
        session.flush()

    return conversation


def write_replies(
    session: Session,
    client: Client,
    conversation: Conversation | None,
    texts: list[str],
    channels: dict[str, Channel],
    purpose: str | None = None,
) -> list[Message]:
    """Store `texts` as queued outbound messages, split to fit the client's channel."""
    channel = channels.get(client.channel)
    max_segments = channel.max_segments if channel else None
    messages = []
    for reply in texts:
        for part in split_reply(reply, max_segments=max_segments):
            count = count_segments(part)
            message = Message(
                client_id=client.id,
                conversation_id=conversation.id if conversation else None,
                direction=OUTBOUND,
                channel=client.channel,
                body=part,
                status=QUEUED,
                encoding=count.encoding,
                segments=count.segments,
                purpose=purpose,
            )
            session.add(message)
            messages.append(message)
    session.flush()

    return messages


def deliver(
    db: Database,
    message_id: int,
    channels: dict[str, Channel],
    *,
    final_attempt: bool = False,
    gate: SendGate | None = None,
) -> bool:
    """Send the client's queued replies up to `message_id`, oldest first.

    Raises `ChannelError` when a retryable failure should be tried again later;
    on the `final_attempt` the message is marked failed before raising. A
    permanent refusal marks the message failed without raising. `gate` may
    hold a reply back: refuse it for good, or postpone it; a postponed reply
    and the later ones stay queued, and True is returned.
    """
    with db.session() as session:
        target = session.get(Message, message_id)
        if target is None or target.direction != OUTBOUND:
            logger.warning("message %s: not an outbound message; skipped", message_id)
            return False
        query = (
            select(Message.id)
            .where(
                Message.client_id == target.client_id,
                Message.direction == OUTBOUND,
                Message.status.in_((QUEUED, SENDING)),
                Message.id <= message_id,
            )
            .order_by(Message.id)
        )
        waiting = list(session.scalars(query))

    for waiting_id in waiting:
        if _deliver_one(db, waiting_id, channels, final_attempt, gate):
            # In order or not at all: the later replies wait with this one.
            return True

    return False


def _deliver_one(
    db: Database,
    message_id: int,
    channels: dict[str, Channel],
    final_attempt: bool,
    gate: SendGate | None,
) -> bool:
    """Send one reply; return True if `gate` postponed it."""
    with db.transaction() as session:
        message = session.get(Message, message_id)
        client = session.get(Client, message.client_id) if message else None
        if message is None or client is None or message.status not in (QUEUED, SENDING):
            return False
        logs.bind_conversation(message.conversation_id)
        if client.opted_out and message.purpose != PRIVACY:
            _set_status(message, SUPPRESSED)
            logger.info("message %s: suppressed, client opted out", message.id)
            return False
        hold = gate(message, client) if gate is not None else None
        if hold is not None and hold.refused:
            _set_status(message, REFUSED)
            _finish_erasure(session, message)
            return False
        if hold is not None:
            message.status = QUEUED
            return True
        message.status = SENDING
        message.attempts += 1
        to, body, channel_name = client.address, message.body, message.channel
        language = client.language
        template = (message.content_sid, message.content_variables or "{}")

    channel = channels.get(channel_name)
    try:
        if channel is None:
            raise ChannelError(
                f"channel {channel_name!r} is not configured; set its TWILIO_* "
                "settings",
                retryable=False,
            )
        if template[0]:
            provider_sid = _send_template(channel, to, template[0], template[1])
        else:
            provider_sid = channel.send(to, body)
    except ChannelError as exc:
        _record_failure(db, message_id, exc, final_attempt)
        if exc.retryable:
            raise
        return False

    with db.transaction() as session:
        message = session.get(Message, message_id)
        if message is not None:
            message.provider_sid = provider_sid
            _set_status(message, "delivered" if channel_name == WEB else SENT)
            _finish_erasure(session, message)
    logger.info("message %s: sent on %s", message_id, channel_name)
    metrics.count(
        "polku_messages_sent_total",
        channel=channel_name,
        language=metrics.language_label(language),
    )

    return False


def _send_template(channel: Channel, to: str, sid: str, variables: str) -> str:
    send = getattr(channel, "send_template", None)
    if send is None:
        raise ChannelError(
            f"channel {channel.name!r} cannot send WhatsApp templates", retryable=False
        )

    return str(send(to, sid, variables))


def _finish_erasure(session: Session, message: Message) -> None:
    """Once an erasing client's last reply is handed over, delete what is left.

    The web chat fetches its replies later, so the retention job removes a web
    client after a while instead.
    """
    client = session.get(Client, message.client_id)
    if client is None or client.erasing_at is None or client.channel == WEB:
        return
    waiting = select(Message.id).where(
        Message.client_id == client.id,
        Message.direction == OUTBOUND,
        Message.status.in_((QUEUED, SENDING)),
    )
    if session.scalars(waiting.limit(1)).first() is None:
        session.delete(client)
        logger.info("client %s: erasure completed", client.id)


def _record_failure(
    db: Database, message_id: int, exc: ChannelError, final_attempt: bool
) -> None:
    with db.transaction() as session:
        message = session.get(Message, message_id)
        if message is None:
            return
        message.error_code = exc.code
        if isinstance(exc, RecipientOptedOutError):
            _opt_out(session, message.client_id)
        if exc.retryable and not final_attempt:
            message.status = QUEUED
            logger.warning("message %s: send failed, will retry: %s", message_id, exc)
            return
        _set_status(message, FAILED)
        _finish_erasure(session, message)
        client_id, channel = message.client_id, message.channel
    kind = "twilio_send" if channel in PHONE_CHANNELS else f"{channel}_send"
    metrics.count("polku_failures_total", kind=kind)
    if exc.retryable:
        # Every try failed: the client is left without this reply.
        logger.error(
            "message %s to client %s: send failed after the last retry: %s",
            message_id,
            client_id,
            exc,
        )
    else:
        logger.warning(
            "message %s to client %s: send refused for good: %s",
            message_id,
            client_id,
            exc,
        )


def _set_status(message: Message, status: str) -> None:
    message.status = status
    message.status_at = utcnow()


def _opt_out(session: Session, client_id: int) -> None:
    client = session.get(Client, client_id)
    if client is not None and client.opted_out_at is None:
        client.opted_out_at = utcnow()
        logger.info("client %s: opted out at the provider", client_id)


def record_status(
    db: Database, provider_sid: str, status: str, error_code: int | None
) -> bool:
    """Record a delivery status callback; False if the message is unknown.

    Callbacks can arrive out of order, so a status never moves backwards. Error
    21610 (the recipient unsubscribed at the carrier) opts the client out. A
    status Twilio does not document is logged and ignored.
    """
    if status not in STATUS_RANK:
        logger.warning("status callback with an unknown status; ignored")
        return False
    with db.transaction() as session:
        query = select(Message).where(
            Message.provider_sid == provider_sid, Message.direction == OUTBOUND
        )
        message = session.scalars(query).one_or_none()
        if message is None:
            logger.info("status callback for an unknown message; ignored")
            return False

        if STATUS_RANK[status] >= STATUS_RANK.get(message.status, 0):
            _set_status(message, status)
        if error_code is not None:
            message.error_code = error_code
        if error_code == 21610:
            _opt_out(session, message.client_id)
        if status == "read":
            record_read(session, message.id, utcnow())
    logger.info("message %s: status %s", message.id, status)

    return True


def queue_inbound(queue: Queue, message: Message, intervals: tuple[int, ...]) -> None:
    """Queue `message` for the worker unless it is answered or already queued."""
    if message.status == RECEIVED:
        enqueue_inbound(queue, message.id, message.client_id, intervals)


def queue_outbound(
    db: Database, queue: Queue, message_ids: list[int], intervals: tuple[int, ...]
) -> None:
    """Queue a send job per reply; one that cannot be queued waits for the sweep."""
    with db.transaction() as session:
        for message_id in message_ids:
            message = session.get(Message, message_id)
            if message is None or message.queued_at is not None:
                continue
            if enqueue_send(queue, message.id, message.client_id, intervals):
                message.queued_at = utcnow()


def hold_counsellor_reply(
    session: Session, client: Client, conversation: Conversation, finnish: str
) -> Message:
    """Store a counsellor's Finnish reply for the worker to translate and send."""
    message = Message(
        client_id=client.id,
        conversation_id=conversation.id,
        direction=OUTBOUND,
        channel=client.channel,
        body=finnish,
        status=TRANSLATING,
        purpose=COUNSELLOR,
    )
    session.add(message)
    session.flush()

    return message
