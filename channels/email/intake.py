"""The receive path the SMTP server and the IMAP poller share: parse, apply the per-sender
rate limit, keep the thread's headers for the reply, hand the message to the inbox, and say
how it went.

A mail whose sender (the From address, as the conversation knows them) is over the limit
comes back ``LIMITED``: the SMTP server answers 450 (the sending server tries again later,
and gets through once the sender is under the limit), the IMAP poller passes it by (it
stays in the mailbox, marked read; logged and counted as rejected ``rate_limited``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from channels.base import InboundRequest, Parsed, Rejected
from channels.email.compose import ThreadHeaders, thread_key
from channels.email.parse import TOO_BIG
from channels.inbox import ChannelState, Inbox
from router.events import Channel, MessageReceived

log = logging.getLogger(__name__)


LIMITED_REASON = "too many messages, try again later"


class Result(StrEnum):
    ACCEPTED = "accepted"
    IGNORED = "ignored"  # an auto-reply, bounce or list mail: taken, never answered
    REJECTED = "rejected"  # refused for good (the sender is told why)
    RETRY = "retry"  # the bus or database is down: the sender must try again
    LIMITED = "limited"  # the sender is over the rate limit: try again later


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    reason: str = ""
    status: int = 250


def thread_headers(item: MessageReceived, before: ThreadHeaders | None) -> ThreadHeaders:
    """The thread's headers after ``item``: its id is now the one a reply answers."""
    refs = item.metadata.get("references", "").split()
    if not refs and item.metadata.get("in_reply_to"):
        refs = [item.metadata["in_reply_to"]]
    return ThreadHeaders(
        message_id=item.metadata.get("message_id") or (before.message_id if before else None),
        references=tuple(refs) or (before.references if before else ()),
        subject=item.metadata.get("subject") or (before.subject if before else ""),
    )


async def remember_threads(state: ChannelState, parsed: Parsed) -> None:
    for item in parsed.items:
        if isinstance(item, MessageReceived) and item.thread:
            key = thread_key(item.thread)
            before = ThreadHeaders.from_state(await state.get(key))
            await state.set(key, thread_headers(item, before).to_state())


class Intake:
    def __init__(self, parse: Callable[[InboundRequest], Parsed], inbox: Inbox) -> None:
        self.parse = parse
        self.inbox = inbox

    async def take(self, request: InboundRequest) -> Outcome:
        try:
            # Off the event loop: a big message takes a while to read, and the SMTP sessions,
            # pollers and deliveries in this process go on meanwhile.
            parsed = await asyncio.to_thread(self.parse, request)
        except Rejected as e:
            code = "too_large" if e.status == TOO_BIG else "malformed"
            self.inbox.rejected(Channel.EMAIL.value, code, e.reason)
            return Outcome(Result.REJECTED, e.reason, e.status)
        if parsed.ignored:
            log.info("email: not answered: %s", parsed.ignored)
            return Outcome(Result.IGNORED, parsed.ignored)
        admitted = self.inbox.admit(parsed)
        if admitted.limited:
            # A mail is one message: nothing of it is taken (a receipt never has a sender).
            self.inbox.refund(admitted)
            return Outcome(Result.LIMITED, LIMITED_REASON, 450)
        try:
            # The thread's headers first: the reply may be sent moments after acceptance.
            await remember_threads(self.inbox.state, parsed)
            await self.inbox.accept(parsed)
        except Exception:
            self.inbox.refund(admitted)
            log.warning("email: could not take a message in; asking to retry", exc_info=True)
            return Outcome(Result.RETRY, "try again later", 451)
        return Outcome(Result.ACCEPTED)
