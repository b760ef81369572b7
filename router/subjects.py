"""The one place NATS subjects and stream names are built.

Subjects are ``neuvonta.v1.<noun>.<verb>[.<routing token>]``; the routing token comes last
and only from an enum (a channel) or a validated queue slug.
"""

from __future__ import annotations

import re
from enum import StrEnum

from router.events import (
    Channel,
    DeadLettered,
    DeliveryReported,
    Event,
    HandoffRequested,
    HandoffResolved,
    MessageReceived,
    ReplyFailed,
    ReplyRequested,
    ReplySent,
)

PREFIX = "neuvonta.v1"

_QUEUE_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class Stream(StrEnum):
    CONVERSATIONS = "NEUVONTA_CONVERSATIONS"
    HANDOFF = "NEUVONTA_HANDOFF"
    DEADLETTER = "NEUVONTA_DEADLETTER"


class Durable(StrEnum):
    """Durable consumer names: ``<service>-<purpose>``."""

    ROUTER_INBOUND = "router-inbound"


def queue_token(queue: str) -> str:
    if not _QUEUE_SLUG.fullmatch(queue):
        raise ValueError(f"not a queue name (lowercase letters, digits, '-', '_'): {queue!r}")
    return queue


def message_received(channel: Channel) -> str:
    return f"{PREFIX}.message.received.{channel.value}"


def reply_requested(channel: Channel) -> str:
    return f"{PREFIX}.reply.requested.{channel.value}"


def reply_sent(channel: Channel) -> str:
    return f"{PREFIX}.reply.sent.{channel.value}"


def reply_failed(channel: Channel) -> str:
    return f"{PREFIX}.reply.failed.{channel.value}"


def reply_status(channel: Channel) -> str:
    return f"{PREFIX}.reply.status.{channel.value}"


def handoff_requested(queue: str) -> str:
    return f"{PREFIX}.handoff.requested.{queue_token(queue)}"


def handoff_assigned(queue: str) -> str:
    return f"{PREFIX}.handoff.assigned.{queue_token(queue)}"


def handoff_resolved(queue: str) -> str:
    return f"{PREFIX}.handoff.resolved.{queue_token(queue)}"


def dead_letter(stream: Stream) -> str:
    return f"{PREFIX}.deadletter.{stream.value.lower()}"


ALL_MESSAGES_RECEIVED = f"{PREFIX}.message.received.>"
ALL_REPLIES_REQUESTED = f"{PREFIX}.reply.requested.*"
ALL_HANDOFF = f"{PREFIX}.handoff.>"

STREAM_SUBJECTS: dict[Stream, list[str]] = {
    Stream.CONVERSATIONS: [
        f"{PREFIX}.message.>",
        f"{PREFIX}.triage.>",
        f"{PREFIX}.reply.>",
    ],
    Stream.HANDOFF: [ALL_HANDOFF],
    Stream.DEADLETTER: [f"{PREFIX}.deadletter.>"],
}


def channel_of(subject: str) -> Channel:
    """The channel token at the end of a per-channel subject."""
    return Channel(subject.rsplit(".", 1)[-1])


def subject_for(event: Event) -> str:
    """Where an event is published."""
    match event:
        case MessageReceived():
            return message_received(event.channel)
        case ReplyRequested():
            return reply_requested(event.channel)
        case ReplySent():
            return reply_sent(event.channel)
        case ReplyFailed():
            return reply_failed(event.channel)
        case DeliveryReported():
            return reply_status(event.channel)
        case HandoffRequested():
            return handoff_requested(event.queue)
        case HandoffResolved():
            return handoff_resolved(event.queue)
        case DeadLettered():
            return dead_letter(Stream(event.stream))
    raise TypeError(f"no subject for {type(event).__name__}")


def msg_id_for(event: Event) -> str:
    """The ``Nats-Msg-Id``: the same fact published twice is stored once by JetStream."""
    match event:
        case MessageReceived():
            return event.dedup_key
        case ReplyRequested():
            return f"reply:{event.message_id}"
        case ReplySent():
            return f"sent:{event.message_id}"
        case DeliveryReported():
            return f"status:{event.channel.value}:{event.provider_message_id}:{event.status.value}"
        case DeadLettered():
            return f"dead:{event.stream}:{event.stream_seq}"
    return event.event_id
