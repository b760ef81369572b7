"""The one channel interface every adapter implements.

An adapter verifies and parses what a provider sends into a ``MessageReceived`` (pure),
and renders and sends a ``ReplyRequested`` on its medium. Rich content degrades to text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from router.events import Channel, ReplyRequested


@dataclass(frozen=True, slots=True)
class Capabilities:
    # Sources shown as links beside the text (web) rather than written into it (SMS).
    structured_sources: bool
    max_chars: int | None
    # Delivered by being stored (the web chat reads its messages from the database).
    delivered_on_store: bool


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    provider_message_id: str | None = None
    error: str | None = None
    # A failure worth another try (network, 5xx) rather than a final refusal.
    retryable: bool = False


class ChannelAdapter(Protocol):
    @property
    def channel(self) -> Channel: ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def send(self, reply: ReplyRequested) -> Delivery: ...
