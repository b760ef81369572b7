"""Typed events that travel over NATS JetStream.

Every event is a frozen pydantic model with an id, a UTC timestamp, a schema version and
the conversation id as correlation id. Channel-specific leftovers go into ``metadata``;
channels never add fields of their own.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Literal[1] = 1


_WHITESPACE = re.compile(r"\s")


def new_id() -> str:
    """A random id for messages, events and conversations (uuid4, hex form)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Channel(StrEnum):
    WEB = "web"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    TELEGRAM = "telegram"
    EMAIL = "email"


class Role(StrEnum):
    """Who wrote a message, as the resident sees it."""

    RESIDENT = "resident"
    AI = "ai"
    AGENT = "agent"
    SYSTEM = "system"


class Address(BaseModel):
    """A resident's address on one channel, with a round-trippable string form.

    ``sms:+358401234567`` · ``telegram:123456`` · ``email:a@b.fi`` · ``web:<session id>``
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: Channel
    value: Annotated[str, StringConstraints(min_length=1, max_length=320)]

    @field_validator("value")
    @classmethod
    def _no_whitespace(cls, v: str) -> str:
        if _WHITESPACE.search(v):
            raise ValueError("an address value has no whitespace")
        return v

    @model_validator(mode="after")
    def _normalise(self) -> Self:
        if self.channel is Channel.EMAIL and self.value != self.value.lower():
            # Email addresses compare case-insensitively in practice; store one form.
            object.__setattr__(self, "value", self.value.lower())
        return self

    def __str__(self) -> str:
        return f"{self.channel.value}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> Address:
        channel, sep, value = text.partition(":")
        if not sep:
            raise ValueError(f"not an address (expected '<channel>:<value>'): {text!r}")
        return cls(channel=Channel(channel), value=value)


def _address_in(value: Any) -> Any:
    return Address.parse(value) if isinstance(value, str) else value


# In events an address travels as its string form.
AddressField = Annotated[
    Address,
    PlainSerializer(str, return_type=str),
    Field(json_schema_extra={"examples": ["sms:+358401234567"]}),
]


class SourceRef(BaseModel):
    """A knowledge-base document an answer is grounded in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    doc_id: str
    title: str
    url: str | None = None


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(default_factory=new_id)
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    schema_version: Literal[1] = SCHEMA_VERSION
    conversation_id: str | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        return cls.model_validate_json(data)


class AttachmentRef(BaseModel):
    """A file the resident sent, recorded as metadata only (the content is not kept)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    filename: Annotated[str, StringConstraints(max_length=255)] = ""
    content_type: Annotated[str, StringConstraints(max_length=255)] = "application/octet-stream"
    size: Annotated[int, Field(ge=0)] = 0


class MessageReceived(Event):
    """A resident's message, accepted by a channel gateway."""

    message_id: str = Field(default_factory=new_id)
    channel: Channel
    provider_message_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    sender: AddressField
    # What the AI reads: for email, without quoted history and signature.
    text: str
    # The whole message as sent, when ``text`` is a cleaned part of it (kept for staff).
    full_text: str | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    # A thread within the sender's channel (an email thread); None: one thread per address.
    thread: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("sender", mode="before")
    @classmethod
    def _parse_sender(cls, v: Any) -> Any:
        return _address_in(v)

    @model_validator(mode="after")
    def _sender_on_channel(self) -> Self:
        if self.sender.channel is not self.channel:
            raise ValueError("the sender's address must be on the message's channel")
        return self

    @property
    def dedup_key(self) -> str:
        """``<channel>:<provider message id>``: the idempotency key (Nats-Msg-Id and DB)."""
        return f"{self.channel.value}:{self.provider_message_id}"

    @property
    def thread_key(self) -> str:
        """The conversation this message belongs to, as a stable key."""
        return f"{self.sender}#{self.thread}" if self.thread else str(self.sender)


class ReplyRequested(Event):
    """A stored outgoing message (AI, agent or system) to deliver on the resident's channel."""

    message_id: str
    channel: Channel
    recipient: AddressField
    role: Literal[Role.AI, Role.AGENT, Role.SYSTEM]
    text: str
    sources: tuple[SourceRef, ...] = ()
    in_reply_to: str | None = None
    # The conversation's thread on the recipient's channel (an email thread's root id).
    thread: str | None = None
    case_number: str | None = None
    language: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("recipient", mode="before")
    @classmethod
    def _parse_recipient(cls, v: Any) -> Any:
        return _address_in(v)


class ReplySent(Event):
    message_id: str
    channel: Channel
    provider_message_id: str | None = None


class ReplyFailed(Event):
    message_id: str
    channel: Channel
    error: str
    attempts: int


class DeliveryStatus(StrEnum):
    """A reply's delivery, as providers report it (Twilio's status callback words)."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"


class DeliveryReported(Event):
    """A provider's receipt for a reply it accepted earlier (by its own message id)."""

    channel: Channel
    provider_message_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    status: DeliveryStatus
    error: str | None = None


class HandoffRequested(Event):
    """A ticket was opened (or a resident wrote into a conversation a person owns)."""

    ticket_id: int
    case_number: str
    queue: str
    reason: str
    urgent: bool = False
    language: str | None = None
    new_ticket: bool = True


class HandoffResolved(Event):
    ticket_id: int
    case_number: str
    queue: str
    resolved_by: str


class DeadLettered(Event):
    """A message the router could not process, kept for people to look at."""

    stream: str
    stream_seq: int
    subject: str
    error: str
    deliveries: int
    payload: str
