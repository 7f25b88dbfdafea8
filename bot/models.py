"""Storage models: clients, their conversations and every message in and out.

Rows are written by the webhooks (inbound messages) and by the workers (state and
replies). Personal fields are listed per model so that later privacy work
(encryption, retention, erasure) has one place to look.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    TypeDecorator,
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

    Inbound: received -> processed (or ignored after an opt-out).
    Outbound: queued -> sending -> sent -> delivered | undelivered | failed.
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
