"""Storage models: clients, their conversations and every message in and out.

Rows are written by the webhooks (inbound messages) and by the workers (state and
replies). Personal fields are listed per model so that later privacy work
(encryption, retention, erasure) has one place to look.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.crypto import EncryptedJSON, EncryptedText


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Store naive UTC, return aware UTC: SQLite keeps no time zone."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware one")

        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> Any:
        if value is None:
            return None

        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


# SQLite reuses the id of a deleted last row unless told not to; an id must
# never come back, or a queue marker or log line could point at a new record.
NO_REUSE = {"sqlite_autoincrement": True}


class Client(Base):
    """A person who writes to Polku on one channel, known by a pseudonym."""

    __tablename__ = "clients"
    __table_args__ = NO_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(
        String(16), unique=True, default=lambda: secrets.token_hex(6)
    )
    channel: Mapped[str] = mapped_column(String(16))
    # Looked up by a keyed hash, so the address itself is never a search key.
    address_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The phone number (or web chat id), encrypted; only sending reads it.
    address: Mapped[str] = mapped_column(EncryptedText())
    language: Mapped[str | None] = mapped_column(String(8))
    # Set when the client confirmed erasure: the row goes once the last reply
    # (the confirmation) has been handed to the channel.
    erasing_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    conversations: Mapped[list[Conversation]] = relationship(
        back_populates="client", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None


class Conversation(Base):
    """One run of Polku's dialogue with a client; `stage` says where it stands."""

    __tablename__ = "conversations"
    __table_args__ = NO_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    stage: Mapped[str] = mapped_column(String(32), default="new")
    # The interview's answers are personal data: encrypted like message texts.
    state: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON(), default=dict)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow
    )
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    client: Mapped[Client] = relationship(back_populates="conversations")


class Message(Base):
    """One text in (`direction="in"`) or out, with its processing or delivery state.

    Inbound: received -> processed (or ignored after an opt-out; limited when
    the sender went over an abuse limit: stored, never answered).
    Outbound: queued -> sending -> sent -> delivered | undelivered | failed;
    refused when SMS may not go to the number's country.
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index(
            "ix_messages_client_direction_status", "client_id", "direction", "status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL")
    )
    direction: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str] = mapped_column(String(16))
    # Twilio's MessageSid (or the web chat's id): a retried webhook hits this.
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    body: Mapped[str] = mapped_column(EncryptedText(), default="")
    media_count: Mapped[int] = mapped_column(Integer, default=0)
    # "privacy": an answer to DELETE or MY DATA, sent even after STOP.
    purpose: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    error_code: Mapped[int | None] = mapped_column(Integer)
    encoding: Mapped[str | None] = mapped_column(String(8))
    segments: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A WhatsApp template (sent outside the 24-hour window instead of free
    # text): its ContentSid and variables. `body` is its text, for the record.
    content_sid: Mapped[str | None] = mapped_column(String(34))
    content_variables: Mapped[str | None] = mapped_column(String(1000))


class AuditEntry(Base):
    """One use or disclosure of personal data outside the client's own conversation."""

    __tablename__ = "audit_entries"
    __table_args__ = NO_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # Who: "client", "system", or a counsellor's or operator's account name.
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    # The client's pseudonymous reference; never a number or a name.
    subject: Mapped[str] = mapped_column(String(32))
    record_class: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(200))


class ModelCall(Base):
    """One call to a language model, for the city's AI register and for audits.

    What was asked for, of which model, with which prompt template and how it
    went; never the prompt or the answer, and no link to a client.
    """

    __tablename__ = "model_calls"
    __table_args__ = NO_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    template: Mapped[str] = mapped_column(String(64))
    # The model asked for, and the one that answered (providers add versions).
    model: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str | None] = mapped_column(String(100))
    # ok, invalid (unusable output), error, timeout, or unavailable (not sent).
    outcome: Mapped[str] = mapped_column(String(16))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)


class Handoff(Base):
    """A case passed to the counsellors: the interview ended or the client asked
    for a person. Its e-mail carries no contact details, only the reference.

    pending -> sending -> sent; a failed send goes back to pending for its
    retries and ends failed when they run out. Taken once a counsellor has it.
    """

    __tablename__ = "handoffs"
    __table_args__ = NO_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    # What counsellors quote: short, unguessable, no meaning of its own.
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    # Emptied when the client's data is deleted (on request or by retention);
    # the row itself, which holds no personal data, is kept as the record that
    # a case was passed on (record class `handoff`).
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"), index=True
    )
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    team: Mapped[str] = mapped_column(String(32))
    # "finished" or "person_requested" (the interview was not finished).
    reason: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The kind of the last failure (an exception's class), never its text.
    last_error: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    taken_by: Mapped[str | None] = mapped_column(String(64))


class CourseGroup(Base):
    """A civic-orientation group: its teacher's team, address and session times."""

    __tablename__ = "course_groups"
    __table_args__ = NO_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    # What participants type after the course keyword, and teachers quote.
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    team: Mapped[str] = mapped_column(String(32))
    teacher_email: Mapped[str] = mapped_column(String(254))
    # Weekdays ("mon,thu"), the local start time ("17:00") and its zone.
    days: Mapped[str] = mapped_column(String(32))
    session_time: Mapped[str] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(40), default="Europe/Helsinki")
    start_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Enrolment(Base):
    """A client taking part in a course group (record class `lesson_progress`).

    active <-> paused; finished after the last lesson; left when removed.
    """

    __tablename__ = "enrolments"
    __table_args__ = (UniqueConstraint("group_id", "client_id"), NO_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("course_groups.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL")
    )
    # What the teacher calls the participant on the progress page, if anything.
    label: Mapped[str | None] = mapped_column(EncryptedText())
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    # Lessons before this one had passed when the participant joined.
    first_lesson: Mapped[int] = mapped_column(Integer, default=1)
    enrolled_by: Mapped[str] = mapped_column(String(64))
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow
    )


class LessonDelivery(Base):
    """One lesson message to one participant; the unique key makes it once only.

    `status` says what became of it: sent (free text), template (a WhatsApp
    template, the text held until the participant writes), or missed (it fell
    due while nothing could be sent, and its time passed).
    """

    __tablename__ = "lesson_deliveries"
    __table_args__ = (UniqueConstraint("enrolment_id", "lesson", "kind"), NO_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("enrolments.id", ondelete="CASCADE"), index=True
    )
    lesson: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # From WhatsApp's read receipts; SMS never tells.
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LessonAnswer(Base):
    """A participant's first answer to a quiz question or a reflection question.

    Only the choice and whether it was right are kept here; a reflection's
    words stay in its message.
    """

    __tablename__ = "lesson_answers"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "lesson", "kind", "question"),
        NO_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("enrolments.id", ondelete="CASCADE"), index=True
    )
    lesson: Mapped[int] = mapped_column(Integer)
    # "quiz" (question numbered from 1) or "reflection" (question 0).
    kind: Mapped[str] = mapped_column(String(16))
    question: Mapped[int] = mapped_column(Integer)
    choice: Mapped[int | None] = mapped_column(Integer)
    correct: Mapped[bool | None] = mapped_column(Boolean)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CourseQuestion(Base):
    """A participant's question for the course teacher, and the teacher's answer.

    pending -> sending -> sent (e-mailed) -> answered; failed when the e-mail's
    retries ran out. The words are in the message; the Finnish translation is
    kept here, encrypted, for the teacher.
    """

    __tablename__ = "course_questions"
    __table_args__ = NO_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("enrolments.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    lesson: Mapped[int | None] = mapped_column(Integer)
    finnish: Mapped[str | None] = mapped_column(EncryptedText())
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_by: Mapped[str | None] = mapped_column(String(64))
