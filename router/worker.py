"""The router worker: takes batches of resident messages off JetStream and sees each through.

Ack only after the outcome is committed and its events are published. Infrastructure
trouble (database, NATS) → nak with a growing delay, forever: such messages wait, they are
not lost. A message that keeps failing for another reason, or cannot be parsed, goes to the
dead-letter stream, where people see it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError

from router.bus import EventPublisher, dead_letter
from router.events import Event, MessageReceived
from router.metrics import Metrics
from router.pipeline import Pipeline
from router.subjects import Stream

log = logging.getLogger(__name__)

# OSError covers ConnectionError; DBAPIError the drivers' OperationalError.
_INFRASTRUCTURE = (DBAPIError, NatsError, TimeoutError, OSError)


def transient(e: BaseException) -> bool:
    """Trouble that waiting cures (a database or NATS away). A constraint refusing a write
    is a database error too, but no outage: waiting for it would not help."""
    return isinstance(e, _INFRASTRUCTURE) and not isinstance(e, IntegrityError)


def retry_delay(deliveries: int) -> float:
    """Seconds before the next try: 1, 2, 4, … capped at five minutes."""
    return float(min(300, 2 ** min(12, max(0, deliveries - 1))))


class InboundHandler:
    def __init__(
        self,
        pipeline: Pipeline,
        publisher: EventPublisher,
        metrics: Metrics,
        *,
        poison_after: int = 3,
        crash_limit: int = 100,
        stream: Stream = Stream.CONVERSATIONS,
    ) -> None:
        self.pipeline = pipeline
        self.publisher = publisher
        self.metrics = metrics
        # Dead-letter after this many deliveries that failed in our code.
        self.poison_after = poison_after
        # Deliveries after which a message is set aside unread (it may crash the process;
        # infrastructure waits count here too, so the limit spans hours of backoff).
        self.crash_limit = crash_limit
        self.stream = stream

    async def __call__(self, msgs: Sequence[Msg]) -> None:
        good: list[tuple[Msg, MessageReceived]] = []
        for m in msgs:
            try:
                event = MessageReceived.from_json(m.data)
            except ValidationError as e:
                await self._dead_letter(m, f"not a valid MessageReceived event: {e}")
                continue
            if m.metadata.num_delivered > self.crash_limit:
                await self._dead_letter(m, f"delivered {m.metadata.num_delivered} times")
                continue
            good.append((m, event))
        if good:
            await self._process(good)

    async def _process(self, items: list[tuple[Msg, MessageReceived]]) -> None:
        settled: set[int] = set()

        async def settle(positions: list[int], out: list[Event]) -> None:
            # Ack only once the outcome is committed and its events are out.
            await self.publisher.publish_all(out)
            await asyncio.gather(*(items[p][0].ack() for p in positions))
            settled.update(positions)

        def unsettled() -> list[tuple[Msg, MessageReceived]]:
            return [item for p, item in enumerate(items) if p not in settled]

        try:
            await self.pipeline.process([e for _, e in items], settle)
        except Exception as e:
            left = unsettled()
            if transient(e):
                log.warning("%d messages wait for infrastructure", len(left), exc_info=True)
                await asyncio.gather(*(self._nak(m) for m, _ in left))
                return
            if len(left) > 1:
                # Find the one that fails; let the rest through.
                log.exception("%d messages failed together; retrying one by one", len(left))
                for item in left:
                    await self._process([item])
                return
            if not left:
                return
            m, event = left[0]
            log.exception("message %s failed", event.message_id)
            if m.metadata.num_delivered >= self.poison_after:
                await self._dead_letter(m, "processing failed repeatedly (see worker log)")
            else:
                await self._nak(m)

    async def _nak(self, m: Msg) -> None:
        try:
            await m.nak(delay=retry_delay(m.metadata.num_delivered))
        except NatsError:
            log.warning("nak failed; the message comes back after ack_wait")

    async def _dead_letter(self, m: Msg, error: str) -> None:
        if await dead_letter(self.publisher, m, self.stream, error):
            self.metrics.dead_lettered.labels(self.stream.value).inc()
        else:
            await self._nak(m)
