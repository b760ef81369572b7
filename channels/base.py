"""The one channel interface every adapter implements: verify, parse, render, send.

Inbound, an adapter turns what its provider delivered (a webhook request, an SMTP
transaction, a long-poll update) into an ``InboundRequest``; ``verify`` refuses forged or
unsigned requests and ``parse`` turns the rest into typed items for the ``Inbox``. Both
are pure. Outbound, ``render`` shapes a ``ReplyRequested`` for the medium (pure) and
``send`` delivers it. Rich content degrades to text.

How an adapter is reached (HTTP routes, a server or poller it runs) is its own business:
``webhooks`` and ``receive`` give the gateway those parts, and nothing else is shared.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from router.events import Address, Channel, DeliveryReported, MessageReceived, ReplyRequested

if TYPE_CHECKING:
    from fastapi import APIRouter

    from channels.inbox import Inbox


@dataclass(frozen=True, slots=True)
class Capabilities:
    # Sources shown as links beside the text (web) rather than written into it (SMS).
    structured_sources: bool
    max_chars: int | None
    # Delivered by being stored (the web chat reads its messages from the database).
    delivered_on_store: bool


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """What a provider delivered, whatever the transport.

    ``body``: the raw bytes (form data, JSON, an RFC 5322 message); ``headers``: with
    lower-case names (for SMTP: the envelope, ``mail-from`` and ``rcpt-to``); ``url``: the
    public URL the provider called, which is what webhook signatures are made over.
    """

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    url: str = ""


class Rejected(Exception):
    """An inbound request refused with a reason (HTTP status for webhooks).

    The reason is shown to the caller and logged: it never contains a secret.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class OptOut:
    """The resident asked to receive nothing more on this address (SMS STOP), or again
    (START). Kept by the gateway; replies to an opted-out address are not sent."""

    address: Address
    opted_out: bool
    provider_message_id: str


# What ``parse`` finds in one request: messages, delivery receipts, opt-outs; or nothing
# to act on (an auto-reply, a bounce, a typing notice) with the reason in ``ignored``.
Item = MessageReceived | DeliveryReported | OptOut


@dataclass(frozen=True, slots=True)
class Parsed:
    items: tuple[Item, ...] = ()
    ignored: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    provider_message_id: str | None = None
    error: str | None = None
    # A failure worth another try (network, 5xx, 429) rather than a final refusal.
    retryable: bool = False


class ChannelAdapter(Protocol):
    @property
    def channels(self) -> tuple[Channel, ...]:
        """Every channel this adapter sends on (Twilio: SMS and WhatsApp)."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    def verify(self, request: InboundRequest) -> None:
        """Raise ``Rejected`` (403) unless the request really comes from the provider."""
        ...

    def parse(self, request: InboundRequest) -> Parsed:
        """The request's items; raise ``Rejected`` (400) on a malformed payload."""
        ...

    def render(self, reply: ReplyRequested) -> Any:
        """The reply as the medium carries it (pure; the adapter's own type)."""
        ...

    async def send(self, reply: ReplyRequested) -> Delivery:
        """Deliver once; never raise for provider trouble (return a failed Delivery)."""
        ...

    def webhooks(self, inbox: Inbox) -> APIRouter | None:
        """HTTP routes the provider calls (mounted under ``/webhooks``), if any."""
        ...

    async def receive(self, inbox: Inbox, stopping: asyncio.Event) -> None:
        """Inbound work of its own (an SMTP server, a long poll) until ``stopping``; return
        at once when the provider only calls webhooks."""
        ...

    async def aclose(self) -> None: ...


SOURCES_HEADING = {"fi": "Lähteet:", "sv": "Källor:", "en": "Sources:"}
_SCHEME = re.compile(r"(?i)^[a-z][a-z0-9+.-]*:")


def absolute_url(url: str | None, public_url: str | None) -> str | None:
    """A link the resident can open outside the web chat: a relative one (``/kb/…``) under
    ``public_url``; absolute ones (``https:``, ``mailto:``) and no public URL: as it is."""
    if not url or not public_url or _SCHEME.match(url):
        return url
    return f"{public_url.rstrip('/')}/{url.lstrip('/')}"


def with_absolute_sources(reply: ReplyRequested, public_url: str | None) -> ReplyRequested:
    sources = tuple(
        s.model_copy(update={"url": absolute_url(s.url, public_url)}) for s in reply.sources
    )
    return reply.model_copy(update={"sources": sources})


def sources_as_text(reply: ReplyRequested) -> str:
    """Sources written into a plain-text message: a heading in the reply's language, then
    one ``title: url`` line each ("" without sources)."""
    heading = SOURCES_HEADING.get(reply.language or "", SOURCES_HEADING["en"])
    lines = [f"{s.title}: {s.url}" if s.url else s.title for s in reply.sources]
    return f"{heading}\n" + "\n".join(lines) if lines else ""
