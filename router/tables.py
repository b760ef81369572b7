"""Database tables (SQLModel). Operations live in ``router.store`` and ``handoff.tickets``."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both SQLite (which keeps no zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, index: bool = False, nullable: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), index=index, nullable=nullable))


def _json() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


def new_version() -> str:
    """A fresh ``ConversationRow.version`` token."""
    return secrets.token_hex(8)


class ConversationRow(SQLModel, table=True):
    __tablename__ = "conversation"

    id: str = Field(primary_key=True)
    # One open thread per key: ``web:<session>``, ``sms:+358…``, an email thread, …
    thread_key: str = Field(unique=True)
    channel: str
    # Where replies go: the channel, address and thread the resident last wrote from.
    address: str = Field(index=True)
    thread: str | None = None
    # The resident across channels (``router.identity``): a phone number or email address.
    contact: str | None = Field(default=None, index=True)
    language: str | None = None
    owner: str = "ai"
    ai_turns: int = 0
    clarifications: int = 0
    disclosed: bool = False
    # A fresh token on every change of the router's state columns (owner, turns, …): the
    # router writes its decision only if the row still holds the token it read, so two
    # workers (or a worker and a person) deciding on one conversation never overwrite
    # each other (``RouterStore.record``). NULL on rows from before it existed.
    version: str | None = None
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class MessageRow(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (Index("ix_message_conversation_created", "conversation_id", "created_at"),)

    id: str = Field(primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id")
    # ``<channel>:<provider message id>`` for inbound messages; the idempotency key.
    dedup_key: str | None = Field(default=None, unique=True)
    role: str
    channel: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    sources: list[dict[str, Any]] = _json()
    # inbound: received · outbound: pending | queued | sent | delivered | read | failed |
    # undelivered | suppressed (opted out)
    status: str
    in_reply_to: str | None = Field(default=None, index=True)
    author: str | None = None
    created_at: datetime = _ts()
    # Inbound: the whole message when ``text`` is a cleaned part of it; files, as metadata.
    full_text: str | None = Field(default=None, sa_column=Column(Text))
    attachments: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    # Outbound: the provider's id once it accepted the reply (receipts refer to it), the
    # tries so far and the last error.
    provider_message_id: str | None = Field(default=None, index=True)
    attempts: int | None = None
    delivery_error: str | None = Field(default=None, sa_column=Column(Text))


class DecisionRow(SQLModel, table=True):
    """What the AI found and what was decided, for every resident message (the audit trail)."""

    __tablename__ = "decision"

    message_id: str = Field(primary_key=True, foreign_key="message.id")
    conversation_id: str = Field(index=True)
    action: str
    reason: str | None = None
    clarify: str | None = None
    queue: str
    threshold: float
    policy_version: int
    urgent: bool = False
    agent: str | None = None
    failure: str | None = None
    language: str | None = None
    reply_language: str | None = None
    intent: str | None = None
    department: str | None = None
    confidence: float | None = None
    personal_case: bool = False
    wants_human: bool = False
    draft: str | None = Field(default=None, sa_column=Column(Text))
    sources: list[dict[str, Any]] = _json()
    ranked_doc_ids: list[str] = _json()
    agent_reason: str | None = None
    latency_ms: float | None = None
    # An LLM agent's audit: which model and prompt, what it cost (agents.base.AgentUsage).
    llm_model: str | None = None
    prompt_version: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    llm_cost: float | None = None
    # The model call alone (with its retries); ``latency_ms`` is the whole triage.
    llm_latency_ms: float | None = None
    llm_fallback: str | None = None
    ticket_id: int | None = None
    created_at: datetime = _ts(index=True)


# One active ticket per conversation at most, whichever worker opens it: a second handoff
# of the same conversation at the same moment fails to commit and is retried, and then
# sees the ticket (its message is held on it).
_ACTIVE_TICKET = "status IN ('open', 'claimed', 'waiting')"


class TicketRow(SQLModel, table=True):
    __tablename__ = "ticket"
    __table_args__ = (
        Index(
            "uq_ticket_active_conversation",
            "conversation_id",
            unique=True,
            sqlite_where=text(_ACTIVE_TICKET),
            postgresql_where=text(_ACTIVE_TICKET),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_number: str | None = Field(default=None, unique=True)
    conversation_id: str = Field(index=True, foreign_key="conversation.id")
    queue: str = Field(index=True)
    # open → claimed → waiting (for the resident) → resolved; rules in handoff.transitions
    status: str = Field(index=True)
    reason: str
    urgent: bool = False
    language: str | None = None
    department: str | None = None
    confidence: float | None = None
    ai_draft: str | None = Field(default=None, sa_column=Column(Text))
    sources: list[dict[str, Any]] = _json()
    created_at: datetime = _ts(index=True)
    updated_at: datetime = _ts()
    first_response_at: datetime | None = _ts(nullable=True)
    resolved_at: datetime | None = _ts(nullable=True)
    resolved_by: str | None = None
    # The agent who claimed it (kept after a reply, so the same person continues).
    owner: str | None = None
    claimed_at: datetime | None = _ts(nullable=True)


class KbDocumentRow(SQLModel, table=True):
    __tablename__ = "kb_document"

    id: str = Field(primary_key=True)
    source: str = ""
    url: str | None = None
    departments: list[str] = _json()
    title: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    text: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    content_hash: str
    updated_at: datetime = _ts()


class KbDocumentOriginRow(SQLModel, table=True):
    """Where each document was ingested from (a file path, a URL, "ptv:<municipality code>"),
    so a re-ingest of one source removes only that source's vanished documents. Documents
    without a row (seeded at first start) belong to no source and are never removed by a
    sync (``agents.knowledge.store``)."""

    __tablename__ = "kb_document_origin"

    doc_id: str = Field(primary_key=True)
    origin: str = Field(sa_column=Column(Text, nullable=False, index=True))


class KbVectorRow(SQLModel, table=True):
    """Passage vectors by model and content key, shared by every worker of the database
    (``agents.knowledge.shared_vectors``): a new worker pod does not embed the pages again."""

    __tablename__ = "kb_vector"

    model: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class DeadLetterRow(SQLModel, table=True):
    __tablename__ = "dead_letter"
    __table_args__ = (UniqueConstraint("stream", "stream_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    stream: str
    stream_seq: int
    subject: str
    error: str = Field(sa_column=Column(Text, nullable=False))
    deliveries: int
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _ts(index=True)


class StaffUserRow(SQLModel, table=True):
    """A person who works in the agent console. Operations live in ``handoff.staff``."""

    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True)
    # argon2id, in the encoded form that carries its own salt and parameters.
    password_hash: str
    # agent | admin
    role: str
    # The queues an agent works in (admins see all).
    queues: list[str] = _json()
    disabled: bool = False
    created_at: datetime = _ts()
    last_login_at: datetime | None = _ts(nullable=True)


class StaffSessionRow(SQLModel, table=True):
    """A signed-in browser. Only hashes are kept: the tokens live in the browser's cookies."""

    __tablename__ = "staff_session"

    # SHA-256 (hex) of the session token and of the CSRF token issued with it.
    token_hash: str = Field(primary_key=True)
    csrf_hash: str
    user_id: int = Field(index=True, foreign_key="staff_user.id")
    created_at: datetime = _ts()
    last_seen_at: datetime = _ts()
    # The absolute end; an idle session ends earlier.
    expires_at: datetime = _ts(index=True)


class PolicyChangeRow(SQLModel, table=True):
    """One change of the handoff thresholds and rules (``handoff.thresholds``): the audit
    trail, and the current setting (the highest version). Version 0 is the configured
    default, never stored; the primary key makes two changes of the same version collide."""

    __tablename__ = "policy_change"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    changed_by: str
    changed_at: datetime = _ts()
    # The admin-set part of the policy before and after: {"default", "queues", "always_handoff"}.
    old: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    new: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    note: str | None = Field(default=None, sa_column=Column(Text))


class AiLabelRow(SQLModel, table=True):
    """A person's verdict on the AI's work for one ticket (``handoff.labels``): the latest
    one; every label given is also kept in ``ai_label_change``. ``None``: not judged."""

    __tablename__ = "ai_label"

    ticket_id: int = Field(
        primary_key=True, foreign_key="ticket.id", sa_column_kwargs={"autoincrement": False}
    )
    department_correct: bool | None = None
    answer_correct: bool | None = None
    labelled_by: str
    labelled_at: datetime = _ts()


class AiLabelChangeRow(SQLModel, table=True):
    """Every label as given, oldest first: the audit trail of ``ai_label``."""

    __tablename__ = "ai_label_change"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(index=True, foreign_key="ticket.id")
    department_correct: bool | None = None
    answer_correct: bool | None = None
    labelled_by: str
    labelled_at: datetime = _ts()


class TicketEventRow(SQLModel, table=True):
    """One thing that happened to a ticket (``handoff.tickets``; rules in
    ``handoff.transitions``): every status change, each transfer and internal note, with who
    and when. Notes are for staff only: nothing here is ever sent to the resident."""

    __tablename__ = "ticket_event"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(index=True, foreign_key="ticket.id")
    # claim | reply | note | transfer | resolve | reopen | resident_message
    kind: str
    # A staff username, or "resident" when the resident's message reopened the ticket.
    actor: str
    from_status: str | None = None
    to_status: str | None = None
    from_queue: str | None = None
    to_queue: str | None = None
    note: str | None = Field(default=None, sa_column=Column(Text))
    message_id: str | None = None
    created_at: datetime = _ts()


class OptOutRow(SQLModel, table=True):
    """An address that asked for no more messages (SMS STOP); START clears it."""

    __tablename__ = "opt_out"

    address: str = Field(primary_key=True)
    opted_out: bool
    provider_message_id: str
    updated_at: datetime = _ts()


class ChannelStateRow(SQLModel, table=True):
    """Small state a channel keeps across restarts: a long-poll offset, the last IMAP uid,
    an email thread's headers. ``key`` starts with the channel's name."""

    __tablename__ = "channel_state"

    key: str = Field(primary_key=True)
    value: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = _ts()
