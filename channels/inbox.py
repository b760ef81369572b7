"""Where adapters hand over what they received, and the small state they keep.

``Inbox.accept`` publishes resident messages to JetStream (the provider's message id is the
dedup key), records delivery receipts on the stored reply, and keeps opt-outs. Adapters
never write to the bus or the database themselves. ``Inbox.admit`` applies the per-sender
rate limit (``channels.ratelimit``) before that: every inbound entry point calls it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.base import Item, OptOut, Parsed
from channels.ratelimit import Admission, RateLimits, Verdict, admit, pseudonym, refund
from router.bus import EventPublisher
from router.db import insert_ignore
from router.events import Address, DeliveryReported, DeliveryStatus, MessageReceived, utcnow
from router.metrics import Metrics
from router.tables import ChannelStateRow, MessageRow, OptOutRow

log = logging.getLogger(__name__)

MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]
OPT_OUT = OptOutRow.__table__  # type: ignore[attr-defined]
STATE = ChannelStateRow.__table__  # type: ignore[attr-defined]

# A receipt never moves a reply back: "sent" after "delivered" arrives out of order often.
_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
    DeliveryStatus.FAILED: 4,
    DeliveryStatus.UNDELIVERED: 4,
}
_BEFORE = {
    status: [s.value for s, r in _RANK.items() if r < rank] + ["pending"]
    for status, rank in _RANK.items()
}


class OptOuts:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def set(self, opt: OptOut) -> None:
        values = {
            "address": str(opt.address),
            "opted_out": opt.opted_out,
            "provider_message_id": opt.provider_message_id,
            "updated_at": utcnow(),
        }
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(OPT_OUT).where(OPT_OUT.c.address == values["address"]).values(values)
            )
            if not done.rowcount:
                await conn.execute(insert_ignore(conn, OPT_OUT).values(values))

    async def opted_out(self, address: Address) -> bool:
        async with self.engine.connect() as conn:
            row = await conn.execute(
                select(OPT_OUT.c.opted_out).where(OPT_OUT.c.address == str(address))
            )
            return bool(row.scalar_one_or_none())


class ChannelState:
    """Small JSON values by key (``telegram:offset``, ``imap:<mailbox>``, …)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, key: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = await conn.execute(select(STATE.c.value).where(STATE.c.key == key))
            value = row.scalar_one_or_none()
            return dict(value) if value is not None else None

    async def set(self, key: str, value: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(STATE).where(STATE.c.key == key).values(value=value, updated_at=utcnow())
            )
            if not done.rowcount:
                await conn.execute(
                    insert_ignore(conn, STATE).values(key=key, value=value, updated_at=utcnow())
                )


async def record_receipt(engine: AsyncEngine, report: DeliveryReported) -> bool:
    """Move the reply the provider reports on to the reported status; False when no reply
    has that provider id or it is already further along."""
    async with engine.begin() as conn:
        done = await conn.execute(
            update(MESSAGE)
            .where(
                MESSAGE.c.provider_message_id == report.provider_message_id,
                MESSAGE.c.channel == report.channel.value,
                MESSAGE.c.status.in_(_BEFORE[report.status]),
            )
            .values(status=report.status.value, delivery_error=report.error)
        )
        return bool(done.rowcount)


class Inbox:
    def __init__(
        self,
        engine: AsyncEngine,
        publisher: EventPublisher,
        metrics: Metrics | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        self.engine = engine
        self.publisher = publisher
        self.metrics = metrics
        # Off unless given (tests, tools); the gateway passes RateLimits.from_settings(...).
        self.limits = limits if limits is not None else RateLimits()
        self.opt_outs = OptOuts(engine)
        self.state = ChannelState(engine)

    def admit(self, parsed: Parsed | Iterable[Item]) -> Admission:
        """The items without the messages whose sender is over the per-sender limit; each of
        those is counted as rejected (``rate_limited``), the first per sender and window also
        logged (with the sender's pseudonym, not the address)."""
        admission = admit(parsed, self.limits)
        for item, verdict in admission.limited:
            self._limited(item.sender, verdict, "message")
        return admission

    def refund(self, admission: Admission) -> None:
        """Call when what ``admit`` let through could not be accepted (the provider will
        deliver it again): its hits are taken back, so a retry does not count twice."""
        refund(admission, self.limits)

    def sender_allowed(self, sender: Address, what: str) -> bool:
        """Count one thing ``sender`` asks for that is not a message (Telegram's ``/start``)
        against its limit; False (counted and logged as for ``admit``) when over it."""
        verdict = self.limits.sender(sender)
        if not verdict.allowed:
            self._limited(sender, verdict, what)
        return verdict.allowed

    def _limited(self, sender: Address, verdict: Verdict, what: str) -> None:
        self.rejected(
            sender.channel.value,
            "rate_limited",
            f"sender {pseudonym(sender)} is over {self.limits.senders.limit} messages a "
            f"minute (may write again in {verdict.retry_after} s); {what} not taken",
            quiet=not verdict.first,
        )

    async def accept(self, parsed: Parsed | Iterable[Any]) -> None:
        """Act on everything an adapter parsed. Raises when the bus or database is down:
        the adapter must then tell its provider to try again (HTTP 5xx, SMTP 451)."""
        items = parsed.items if isinstance(parsed, Parsed) else tuple(parsed)
        for item in items:
            match item:
                case MessageReceived():
                    await self.publisher.publish(item)
                    if self.metrics is not None:
                        self.metrics.messages_in.labels(item.channel.value).inc()
                case DeliveryReported():
                    if not await record_receipt(self.engine, item):
                        log.info(
                            "receipt %s for %s changed nothing",
                            item.status.value,
                            item.provider_message_id,
                        )
                case OptOut():
                    await self.opt_outs.set(item)
                    log.info(
                        "%s opted %s", item.address.channel.value, "out" if item.opted_out else "in"
                    )
                case _:
                    raise TypeError(f"not an inbound item: {type(item).__name__}")

    def rejected(self, channel: str, code: str, reason: str = "", *, quiet: bool = False) -> None:
        """Count and log a refused request (``count_rejected``)."""
        count_rejected(self.metrics, channel, code, reason, quiet=quiet)


def count_rejected(
    metrics: Metrics | None, channel: str, code: str, reason: str = "", *, quiet: bool = False
) -> None:
    """Count and log a refused request. ``code``: a short fixed word for the metric
    (``bad_signature``, ``malformed``, ``too_large``, ``rate_limited``); ``reason`` never
    holds a secret. ``quiet``: logged at debug level only (a flood's repeats)."""
    log.log(
        logging.DEBUG if quiet else logging.WARNING,
        "%s: rejected inbound request (%s): %s",
        channel,
        code,
        reason,
    )
    if metrics is not None:
        metrics.rejected.labels(channel, code).inc()
