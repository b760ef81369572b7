"""Tickets: the cases people work on. Listing, reading, replying and resolving."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.labels import AiLabel, LabelStore
from router.bus import EventPublisher
from router.conversations import Conversations, StaffMessageView
from router.events import (
    Address,
    Channel,
    HandoffResolved,
    ReplyRequested,
    Role,
    SourceRef,
    new_id,
    utcnow,
)
from router.store import initial_status
from router.tables import ConversationRow, MessageRow, TicketRow

TICKET = TicketRow.__table__  # type: ignore[attr-defined]
CONVERSATION = ConversationRow.__table__  # type: ignore[attr-defined]
MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]

log = logging.getLogger(__name__)


class TicketSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    case_number: str
    queue: str
    status: str
    conversation_id: str
    language: str | None
    reason: str
    urgent: bool
    channel: str
    created_at: datetime
    updated_at: datetime
    preview: str


class TicketDetail(TicketSummary):
    department: str | None
    confidence: float | None
    ai_draft: str | None
    sources: list[SourceRef]
    address: str
    first_response_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    transcript: list[StaffMessageView]
    # The latest "AI was right / wrong" label (handoff.labels); None: not labelled yet.
    label: AiLabel | None = None


def shown_address(address: str) -> str:
    """The resident's address as staff see it.

    A web chat's session id is the resident's key to the conversation: staff see only a
    short fingerprint of it, enough to tell two chats apart.
    """
    parsed = Address.parse(address)
    if parsed.channel is Channel.WEB:
        digest = hashlib.sha256(parsed.value.encode()).hexdigest()[:8]
        return f"web:…{digest}"
    return address


class TicketNotFound(LookupError):
    pass


class TicketClosed(RuntimeError):
    pass


class TicketForbidden(PermissionError):
    """The ticket is in a queue the caller does not work in."""


def _check_queue(ticket_id: int, queue: str, allowed: Collection[str] | None) -> None:
    if allowed is not None and queue not in allowed:
        raise TicketForbidden(ticket_id)


def _summary_columns() -> list[Any]:
    t, c = TICKET.c, CONVERSATION.c
    # The resident's latest message, shown in the queue list.
    preview = (
        select(MESSAGE.c.text)
        .where(MESSAGE.c.conversation_id == t.conversation_id, MESSAGE.c.role == "resident")
        .order_by(MESSAGE.c.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return [
        t.id,
        t.case_number,
        t.queue,
        t.status,
        t.conversation_id,
        t.language,
        t.reason,
        t.urgent,
        c.channel,
        t.created_at,
        t.updated_at,
        func.coalesce(preview, "").label("preview"),
    ]


class TicketService:
    def __init__(self, engine: AsyncEngine, publisher: EventPublisher) -> None:
        self.engine = engine
        self.publisher = publisher
        self.conversations = Conversations(engine)

    async def list(
        self, *, status: str | None = "open", queues: list[str] | None = None, limit: int = 200
    ) -> list[TicketSummary]:
        t = TICKET.c
        q = (
            select(*_summary_columns())
            .join(CONVERSATION, CONVERSATION.c.id == t.conversation_id)
            .order_by(t.urgent.desc(), t.created_at)
            .limit(limit)
        )
        if status:
            q = q.where(t.status == status)
        if queues is not None:  # an empty list: no queue, no tickets
            q = q.where(t.queue.in_(queues))
        async with self.engine.connect() as conn:
            rows = await conn.execute(q)
            return [TicketSummary.model_validate(dict(r._mapping)) for r in rows]

    async def get(self, ticket_id: int, *, allowed: Collection[str] | None = None) -> TicketDetail:
        """One ticket with its transcript; ``allowed``: the caller's queues (None: all)."""
        t, c = TICKET.c, CONVERSATION.c
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        *_summary_columns(),
                        t.department,
                        t.confidence,
                        t.ai_draft,
                        t.sources,
                        c.address,
                        t.first_response_at,
                        t.resolved_at,
                        t.resolved_by,
                    )
                    .join(CONVERSATION, c.id == t.conversation_id)
                    .where(t.id == ticket_id)
                )
            ).one_or_none()
        if row is None:
            raise TicketNotFound(ticket_id)
        _check_queue(ticket_id, row.queue, allowed)
        transcript = await self.conversations.staff_messages(row.conversation_id)
        label = await LabelStore(self.engine).get(ticket_id)
        return TicketDetail.model_validate(
            {
                **row._mapping,
                "address": shown_address(row.address),
                "transcript": transcript,
                "label": label,
            }
        )

    async def reply(
        self, ticket_id: int, text: str, author: str, *, allowed: Collection[str] | None = None
    ) -> tuple[str, bool]:
        """Store an agent's reply and send it on the resident's own channel.

        Returns the message id and whether it was queued for delivery; a stored reply that
        could not be queued yet is sent again by the worker's outbox sweep.
        """
        now = utcnow()
        message_id = new_id()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(
                        TICKET.c.status,
                        TICKET.c.queue,
                        TICKET.c.conversation_id,
                        TICKET.c.case_number,
                        TICKET.c.language,
                        CONVERSATION.c.channel,
                        CONVERSATION.c.address,
                    )
                    .join(CONVERSATION, CONVERSATION.c.id == TICKET.c.conversation_id)
                    .where(TICKET.c.id == ticket_id)
                )
            ).one_or_none()
            if row is None:
                raise TicketNotFound(ticket_id)
            _check_queue(ticket_id, row.queue, allowed)
            if row.status == "resolved":
                raise TicketClosed(ticket_id)
            channel = Channel(row.channel)
            await conn.execute(
                MESSAGE.insert().values(
                    id=message_id,
                    conversation_id=row.conversation_id,
                    dedup_key=None,
                    role=Role.AGENT.value,
                    channel=channel.value,
                    text=text,
                    sources=[],
                    status=initial_status(channel),
                    in_reply_to=None,
                    author=author,
                    created_at=now,
                )
            )
            await conn.execute(
                update(TICKET)
                .where(TICKET.c.id == ticket_id)
                .values(
                    updated_at=now,
                    first_response_at=func.coalesce(TICKET.c.first_response_at, now),
                )
            )
        try:
            await self.publisher.publish(
                ReplyRequested(
                    conversation_id=row.conversation_id,
                    message_id=message_id,
                    channel=channel,
                    recipient=Address.parse(row.address),
                    role=Role.AGENT,
                    text=text,
                    case_number=row.case_number,
                    language=row.language,
                )
            )
        except Exception:
            log.warning("agent reply %s stored but not queued yet", message_id, exc_info=True)
            return message_id, False
        return message_id, True

    async def resolve(
        self, ticket_id: int, by: str, *, allowed: Collection[str] | None = None
    ) -> TicketDetail:
        """Close the case; the conversation goes back to the AI for new questions."""
        now = utcnow()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(
                        TICKET.c.status,
                        TICKET.c.conversation_id,
                        TICKET.c.case_number,
                        TICKET.c.queue,
                    ).where(TICKET.c.id == ticket_id)
                )
            ).one_or_none()
            if row is None:
                raise TicketNotFound(ticket_id)
            _check_queue(ticket_id, row.queue, allowed)
            if row.status != "resolved":
                await conn.execute(
                    update(TICKET)
                    .where(TICKET.c.id == ticket_id)
                    .values(status="resolved", resolved_at=now, resolved_by=by, updated_at=now)
                )
                await conn.execute(
                    update(CONVERSATION)
                    .where(CONVERSATION.c.id == row.conversation_id)
                    .values(owner="ai", clarifications=0, ai_turns=0, updated_at=now)
                )
        if row.status != "resolved":
            await self.publisher.publish(
                HandoffResolved(
                    conversation_id=row.conversation_id,
                    ticket_id=ticket_id,
                    case_number=row.case_number,
                    queue=row.queue,
                    resolved_by=by,
                )
            )
        return await self.get(ticket_id, allowed=allowed)
