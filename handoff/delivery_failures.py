"""A reply that could not be delivered goes to a person, never into a void.

When a channel gives up on a reply (``channels.delivery``), its conversation's active
ticket records the failure (staff see it in the ticket's timeline and transcript); without
one, a ticket is opened, reason ``delivery_failed``, in the queue the conversation was last
routed to, so someone can reach the resident another way.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.tickets import _set_owner
from handoff.transitions import ACTIVE
from router.bus import EventPublisher
from router.compose import new_case_number
from router.decide import Owner
from router.events import HandoffRequested, ReplyRequested, utcnow
from router.policy import DEFAULT_QUEUE
from router.tables import DecisionRow, TicketEventRow, TicketRow

log = logging.getLogger(__name__)

DECISION = DecisionRow.__table__  # type: ignore[attr-defined]
TICKET = TicketRow.__table__  # type: ignore[attr-defined]
TICKET_EVENT = TicketEventRow.__table__  # type: ignore[attr-defined]

REASON = "delivery_failed"


class DeliveryFailures:
    def __init__(
        self, engine: AsyncEngine, publisher: EventPublisher, *, case_prefix: str = "NV"
    ) -> None:
        self.engine = engine
        self.publisher = publisher
        self.case_prefix = case_prefix

    async def __call__(self, reply: ReplyRequested, error: str) -> int | None:
        """Record the failure on a ticket (opened if need be); returns its id."""
        if reply.conversation_id is None:
            log.error("undeliverable reply %s has no conversation", reply.message_id)
            return None
        try:
            return await self._record(reply, reply.conversation_id, error)
        except IntegrityError:
            # A worker opened the conversation's ticket at the same moment (one active ticket
            # per conversation): the failure goes on that one.
            return await self._record(reply, reply.conversation_id, error)

    async def _record(self, reply: ReplyRequested, cid: str, error: str) -> int:
        now = utcnow()
        t = TICKET.c
        async with self.engine.begin() as conn:
            ticket = (
                await conn.execute(
                    select(t.id, t.case_number, t.queue, t.status)
                    .where(t.conversation_id == cid, t.status.in_(ACTIVE))
                    .order_by(t.id.desc())
                    .limit(1)
                )
            ).one_or_none()
            opened = ticket is None
            if ticket is None:
                queue = (
                    await conn.execute(
                        select(DECISION.c.queue)
                        .where(DECISION.c.conversation_id == cid)
                        .order_by(DECISION.c.created_at.desc())
                        .limit(1)
                    )
                ).scalar_one_or_none() or DEFAULT_QUEUE
                case_number = new_case_number(self.case_prefix)
                ticket_id = (
                    await conn.execute(
                        TICKET.insert()
                        .values(
                            case_number=case_number,
                            conversation_id=cid,
                            queue=queue,
                            status="open",
                            reason=REASON,
                            language=reply.language,
                            sources=[],
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(t.id)
                    )
                ).scalar_one()
                await _set_owner(conn, cid, Owner.HUMAN.value, now)
            else:
                ticket_id, case_number, queue = ticket.id, ticket.case_number, ticket.queue
            await conn.execute(
                TICKET_EVENT.insert().values(
                    ticket_id=ticket_id,
                    kind=REASON,
                    actor="router",
                    note=f"{reply.channel.value}: {error}"[:2000],
                    message_id=reply.message_id,
                    created_at=now,
                )
            )
        await self.publisher.publish(
            HandoffRequested(
                conversation_id=cid,
                ticket_id=ticket_id,
                case_number=case_number,
                queue=queue,
                reason=REASON,
                language=reply.language,
                new_ticket=opened,
            )
        )
        return int(ticket_id)
