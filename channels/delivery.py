"""Sending replies on provider channels: retried with backoff, recorded, never dropped.

One durable JetStream consumer per channel reads ``reply.requested.<channel>``. A reply
already sent (the database says so) is acknowledged without sending again, so a
redelivery after a crash, or a consumer created anew that replays the stream, does not
message the resident twice. A failure worth retrying waits 2, 4, 8 … × the base delay
(``nak`` with a delay); after the last try, or at once on a final refusal, the reply is
marked failed, a ``ReplyFailed`` and a dead letter are published, and agents see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.base import ChannelAdapter, Delivery
from channels.inbox import OptOuts
from router import subjects
from router.bus import ConsumerSpec, EventPublisher, dead_letter
from router.events import (
    Channel,
    ReplyFailed,
    ReplyRequested,
    ReplySent,
)
from router.metrics import Metrics
from router.tables import MessageRow

log = logging.getLogger(__name__)

MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]

# Accepted-but-unrecorded replies remembered, and how long recording one may wait (s) before
# the message is handed back (the memory still keeps it from being sent again here).
ACCEPTED_MEMORY = 10_000
RECORD_PATIENCE = 60.0

# Statuses after which a reply is never sent again.
FINAL = frozenset({"sent", "delivered", "read", "failed", "undelivered", "suppressed"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6
    backoff: float = 2.0
    cap: float = 3600.0

    def delay(self, attempt: int) -> float:
        """Seconds before try ``attempt + 1``."""
        return min(self.cap, self.backoff * 2.0 ** max(0, attempt - 1))


# The longest a provider call takes before its client gives up (email's whole SMTP session:
# 25 s; Twilio and Telegram less), with a margin.
SEND_DEADLINE = 30.0


def consumer_spec(channel: Channel, ack_wait: float = 30.0) -> ConsumerSpec:
    """``ack_wait``: the router's (NEUVONTA_ACK_WAIT), but never shorter than a send can take,
    so a reply is not handed to another gateway while it is on its way."""
    return ConsumerSpec(
        stream=subjects.Stream.CONVERSATIONS,
        durable=f"gateway-deliver-{channel.value}",
        subject=subjects.reply_requested(channel),
        batch=32,
        ack_wait=max(ack_wait, SEND_DEADLINE + 10.0),
        max_ack_pending=256,
    )


class DeliveryWorker:
    """The batch handler of one channel's delivery consumer."""

    def __init__(
        self,
        adapter: ChannelAdapter,
        engine: AsyncEngine,
        publisher: EventPublisher,
        *,
        retry: RetryPolicy,
        metrics: Metrics | None = None,
        on_failure: Callable[[ReplyRequested, str], Awaitable[object]] | None = None,
    ) -> None:
        self.adapter = adapter
        # Puts an undeliverable reply in front of a person (handoff.delivery_failures).
        self.on_failure = on_failure
        self.engine = engine
        self.publisher = publisher
        self.retry = retry
        self.metrics = metrics
        self.opt_outs = OptOuts(engine)
        # Replies a provider accepted whose "sent" is not recorded yet: never sent twice.
        self._accepted: OrderedDict[str, Delivery] = OrderedDict()

    async def __call__(self, msgs: Sequence[Msg]) -> None:
        await asyncio.gather(*(self._one(m) for m in msgs))

    async def _one(self, m: Msg) -> None:
        try:
            reply = ReplyRequested.from_json(m.data)
        except ValidationError as e:
            await self._dead_letter(m, f"not a valid ReplyRequested event: {e}")
            return
        try:
            await self._deliver(m, reply)
        except Exception:
            # Our own trouble (database, bus): the reply comes back after a delay.
            log.warning("delivery of %s interrupted; will retry", reply.message_id, exc_info=True)
            await _nak(m, self.retry.delay(m.metadata.num_delivered))

    async def _deliver(self, m: Msg, reply: ReplyRequested) -> None:
        attempt = m.metadata.num_delivered
        if await self._status(reply.message_id) in FINAL:
            await m.ack()
            return
        if await self.opt_outs.opted_out(reply.recipient):
            await self._record(reply.message_id, "suppressed", attempt, "the resident opted out")
            self._count(reply.channel, "suppressed")
            await m.ack()
            return
        accepted = self._accepted.get(reply.message_id)
        if accepted is not None:  # sent by this process; only the record was missing
            await self._settle_sent(m, reply, attempt, accepted)
            return
        try:
            result = await self.adapter.send(reply)
        except Exception as e:  # an adapter must not raise; if it does, try again
            log.exception("%s adapter raised sending %s", reply.channel.value, reply.message_id)
            result = Delivery(ok=False, error=f"{type(e).__name__}", retryable=True)
        if result.ok:
            self._accepted[reply.message_id] = result
            while len(self._accepted) > ACCEPTED_MEMORY:
                self._accepted.popitem(last=False)
            await self._settle_sent(m, reply, attempt, result)
            return
        error = result.error or "delivery failed"
        if result.retryable and attempt < self.retry.attempts:
            await self._record(reply.message_id, None, attempt, error)
            self._count(reply.channel, "retried")
            log.warning(
                "%s reply %s: try %d of %d failed (%s); retrying",
                reply.channel.value,
                reply.message_id,
                attempt,
                self.retry.attempts,
                error,
            )
            await _nak(m, self.retry.delay(attempt))
            return
        if self.on_failure is not None:
            await self.on_failure(reply, error)
        await self._record(reply.message_id, "failed", attempt, error)
        self._count(reply.channel, "failed")
        await self.publisher.publish(
            ReplyFailed(
                conversation_id=reply.conversation_id,
                message_id=reply.message_id,
                channel=reply.channel,
                error=error,
                attempts=attempt,
            )
        )
        await self._dead_letter(m, f"delivery failed after {attempt} tries: {error}")

    async def _settle_sent(
        self, m: Msg, reply: ReplyRequested, attempt: int, result: Delivery
    ) -> None:
        """The provider has the reply: it must never go out again. Record "sent" until the
        database takes it (holding the message meanwhile), then acknowledge."""
        delay, waited = 0.25, 0.0
        while True:
            try:
                await self._record(
                    reply.message_id, "sent", attempt, None, provider_id=result.provider_message_id
                )
                break
            except Exception:
                if waited > RECORD_PATIENCE:
                    # Redelivered here, it is recorded without sending (``_accepted``).
                    log.warning("reply %s sent but not recorded yet", reply.message_id)
                    await _nak(m, self.retry.delay(attempt))
                    return
                log.warning("reply %s sent; recording it waits", reply.message_id, exc_info=True)
                with contextlib.suppress(Exception):
                    await m.in_progress()
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 5.0)
        self._accepted.pop(reply.message_id, None)
        self._count(reply.channel, "sent")
        try:
            await self.publisher.publish(
                ReplySent(
                    conversation_id=reply.conversation_id,
                    message_id=reply.message_id,
                    channel=reply.channel,
                    provider_message_id=result.provider_message_id,
                )
            )
        except Exception:  # the record above is what counts; the event only informs
            log.warning("ReplySent for %s not published", reply.message_id, exc_info=True)
        await m.ack()

    async def _status(self, message_id: str) -> str | None:
        async with self.engine.connect() as conn:
            row = await conn.execute(select(MESSAGE.c.status).where(MESSAGE.c.id == message_id))
            return row.scalar_one_or_none()

    async def _record(
        self,
        message_id: str,
        status: str | None,
        attempts: int,
        error: str | None,
        *,
        provider_id: str | None = None,
    ) -> None:
        values: dict[str, object] = {"attempts": attempts, "delivery_error": error}
        if status is not None:
            values["status"] = status
        if provider_id is not None:
            values["provider_message_id"] = provider_id
        async with self.engine.begin() as conn:
            await conn.execute(
                update(MESSAGE)
                .where(MESSAGE.c.id == message_id, MESSAGE.c.status.not_in(FINAL))
                .values(**values)
            )

    def _count(self, channel: Channel, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.deliveries.labels(channel.value, outcome).inc()

    async def _dead_letter(self, m: Msg, error: str) -> None:
        if not await dead_letter(self.publisher, m, subjects.Stream.CONVERSATIONS, error):
            await _nak(m, self.retry.delay(m.metadata.num_delivered))


async def _nak(m: Msg, delay: float) -> None:
    try:
        await m.nak(delay=delay)
    except Exception:
        log.warning("nak failed; the reply comes back after ack_wait")
