"""Tickets: the cases people work on. Listing and reading them, and every change of their
lifecycle (claim, reply, note, transfer, resolve, reopen; rules in ``handoff.transitions``),
each recorded in ``ticket_event`` with who, when, from and to."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from handoff.labels import AiLabel, LabelStore
from handoff.queues import DEFAULT_QUEUES, Queue, by_name
from handoff.transitions import ACTIVE, Action, NotAllowed, Status, apply
from router import subjects
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
from router.policy import DEFAULT_QUEUE
from router.tables import ConversationRow, MessageRow, TicketEventRow, TicketRow, new_version

TICKET = TicketRow.__table__  # type: ignore[attr-defined]
CONVERSATION = ConversationRow.__table__  # type: ignore[attr-defined]
MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]
TICKET_EVENT = TicketEventRow.__table__  # type: ignore[attr-defined]

log = logging.getLogger(__name__)

# Status filters of the list besides the statuses themselves.
ACTIVE_FILTER = "active"  # open, claimed or waiting: everything not resolved
ALL_FILTER = "all"


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
    owner: str | None = None
    first_response_at: datetime | None = None
    # When the first human response is due (the queue's target in open time; None once
    # answered) and whether that moment has passed unanswered.
    due_at: datetime | None = None
    overdue: bool = False


class TimelineEntry(BaseModel):
    """One change of a ticket. ``note`` is internal: it is never sent to the resident."""

    model_config = ConfigDict(frozen=True)

    kind: str
    actor: str
    at: datetime
    from_status: str | None = None
    to_status: str | None = None
    from_queue: str | None = None
    to_queue: str | None = None
    note: str | None = None
    message_id: str | None = None


class TicketDetail(TicketSummary):
    department: str | None
    confidence: float | None
    ai_draft: str | None
    sources: list[SourceRef]
    address: str
    resolved_at: datetime | None
    resolved_by: str | None
    claimed_at: datetime | None = None
    transcript: list[StaffMessageView]
    # Oldest first, from the opening of the ticket.
    timeline: list[TimelineEntry] = []
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


# ---- delivery -----------------------------------------------------------------------------

# An agent reply is stored "pending" and moves on once its ReplyRequested event is out.
PENDING = "pending"


def status_after_publish(channel: Channel) -> str:
    """A reply's delivery status once its event is published.

    Web chat: delivered (the browser gets the event, and the chat reads the stored message).
    Other channels: "queued" for their gateway. Extension point for delivery receipts
    (issue 5): a gateway that sends or fails publishes ReplySent / ReplyFailed, and its
    consumer calls ``TicketService.set_delivery`` with "sent", "delivered" or "failed".
    """
    return "delivered" if channel is Channel.WEB else "queued"


class TicketNotFound(LookupError):
    pass


class TicketForbidden(PermissionError):
    """The ticket is in a queue the caller does not work in."""


class TicketConflict(RuntimeError):
    """The action does not fit the ticket's state now (HTTP 409); the message says why."""


class UnknownQueue(ValueError):
    pass


def _check_queue(ticket_id: int, queue: str, allowed: Collection[str] | None) -> None:
    if allowed is not None and queue not in allowed:
        raise TicketForbidden(ticket_id)


async def _set_owner(
    conn: AsyncConnection, conversation_id: str, owner: str, now: datetime, **values: Any
) -> None:
    """Hand the ticket's conversation to ``owner`` ("ai" or "human") inside ``conn``."""
    await conn.execute(
        update(CONVERSATION)
        .where(CONVERSATION.c.id == conversation_id)
        # A new version: a worker that decided on the old state decides again.
        .values(owner=owner, updated_at=now, version=new_version(), **values)
    )


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
        t.owner,
        t.first_response_at,
    ]


def _changed_subject(queue: str) -> str:
    return f"{subjects.PREFIX}.handoff.changed.{subjects.queue_token(queue)}"


class TicketService:
    def __init__(
        self,
        engine: AsyncEngine,
        publisher: EventPublisher,
        *,
        queues: tuple[Queue, ...] = DEFAULT_QUEUES,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.publisher = publisher
        self.queues = by_name(queues)
        self.clock = clock
        self.conversations = Conversations(engine)
        self.labels = LabelStore(engine)

    # ---- reading ----------------------------------------------------------------------

    def _queue(self, name: str) -> Queue:
        return self.queues.get(name) or self.queues.get(DEFAULT_QUEUE) or DEFAULT_QUEUES[0]

    def _timing(self, row: Any, now: datetime) -> dict[str, Any]:
        if row.first_response_at is not None:
            return {"due_at": None, "overdue": False}
        due = self._queue(row.queue).due_at(row.created_at)
        return {"due_at": due, "overdue": row.status in ACTIVE and now >= due}

    async def list(
        self,
        *,
        status: str | None = ACTIVE_FILTER,
        queues: list[str] | None = None,
        urgent: bool = False,
        overdue: bool = False,
        owner: str | None = None,
        search: str | None = None,
        limit: int = 200,
    ) -> list[TicketSummary]:
        """Tickets, urgent first, then oldest first. ``status``: one status, "active" (not
        resolved) or "all"/None; ``queues``: only these (an empty list: none); ``urgent``,
        ``overdue``: only those; ``search``: words in the case number or any message."""
        t = TICKET.c
        q: Select[Any] = (
            select(*_summary_columns())
            .join(CONVERSATION, CONVERSATION.c.id == t.conversation_id)
            .order_by(t.urgent.desc(), t.created_at, t.id)
        )
        if status == ACTIVE_FILTER:
            q = q.where(t.status.in_(ACTIVE))
        elif status and status != ALL_FILTER:
            q = q.where(t.status == status)
        if queues is not None:
            q = q.where(t.queue.in_(queues))
        if urgent:
            q = q.where(t.urgent.is_(True))
        if owner is not None:
            q = q.where(t.owner == owner)
        if search and search.strip():
            text = search.strip()
            q = q.where(
                or_(
                    t.case_number.icontains(text, autoescape=True),
                    exists().where(
                        MESSAGE.c.conversation_id == t.conversation_id,
                        MESSAGE.c.text.icontains(text, autoescape=True),
                    ),
                )
            )
        if overdue:
            # The database narrows it down; the due time depends on each queue's hours.
            q = q.where(t.first_response_at.is_(None), t.status.in_(ACTIVE))
        else:
            q = q.limit(limit)
        now = self.clock()
        async with self.engine.connect() as conn:
            found = [
                TicketSummary.model_validate({**r._mapping, **self._timing(r, now)})
                for r in await conn.execute(q)
            ]
        if overdue:
            found = [s for s in found if s.overdue][:limit]
        return found

    async def overdue_counts(self) -> dict[str, int]:
        """Overdue tickets per queue (queues with none are left out). Reads only the queue and
        opening time of the unanswered active tickets: no preview, no summaries to build."""
        t = TICKET.c
        q = select(t.queue, t.created_at).where(t.first_response_at.is_(None), t.status.in_(ACTIVE))
        now = self.clock()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        counts: dict[str, int] = {}
        for queue, created_at in rows:
            if now >= self._queue(queue).due_at(created_at):
                counts[queue] = counts.get(queue, 0) + 1
        return counts

    async def get(self, ticket_id: int, *, allowed: Collection[str] | None = None) -> TicketDetail:
        """One ticket with its transcript and timeline; ``allowed``: the caller's queues
        (None: all)."""
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
                        t.resolved_at,
                        t.resolved_by,
                        t.claimed_at,
                    )
                    .join(CONVERSATION, c.id == t.conversation_id)
                    .where(t.id == ticket_id)
                )
            ).one_or_none()
            if row is None:
                raise TicketNotFound(ticket_id)
            _check_queue(ticket_id, row.queue, allowed)
            events = (
                await conn.execute(
                    select(TICKET_EVENT)
                    .where(TICKET_EVENT.c.ticket_id == ticket_id)
                    .order_by(TICKET_EVENT.c.created_at, TICKET_EVENT.c.id)
                )
            ).all()
        transcript = await self.conversations.staff_messages(row.conversation_id)
        timeline = [
            TimelineEntry.model_validate({**e._mapping, "at": e.created_at}) for e in events
        ]
        first_queue = next((e.from_queue for e in timeline if e.kind == Action.TRANSFER), None)
        opened = TimelineEntry(
            kind="opened",
            actor="router",
            at=row.created_at,
            to_status=Status.OPEN,
            to_queue=first_queue or row.queue,
        )
        return TicketDetail.model_validate(
            {
                **row._mapping,
                **self._timing(row, self.clock()),
                "address": shown_address(row.address),
                "transcript": transcript,
                "timeline": [opened, *timeline],
                "label": await self.labels.get(ticket_id),
            }
        )

    # ---- changing ---------------------------------------------------------------------

    async def _change(
        self,
        conn: AsyncConnection,
        ticket_id: int,
        action: Action,
        by: str,
        *,
        admin: bool,
        allowed: Collection[str] | None,
        now: datetime,
        values: dict[str, Any] | None = None,
        event: dict[str, Any] | None = None,
    ) -> Any:
        """Apply ``action`` inside ``conn``'s transaction and record it; returns the ticket
        row as it was (with its conversation's channel and address)."""
        t, c = TICKET.c, CONVERSATION.c
        row = (
            await conn.execute(
                select(
                    t.id,
                    t.status,
                    t.owner,
                    t.queue,
                    t.conversation_id,
                    t.case_number,
                    t.language,
                    c.channel,
                    c.address,
                    c.thread,
                )
                .join(CONVERSATION, c.id == t.conversation_id)
                .where(t.id == ticket_id)
                .with_for_update(of=TICKET)
            )
        ).one_or_none()
        if row is None:
            raise TicketNotFound(ticket_id)
        _check_queue(ticket_id, row.queue, allowed)
        try:
            change = apply(action, Status(row.status), row.owner, by, admin=admin)
        except NotAllowed as e:
            raise TicketConflict(e.reason) from None
        if action is not Action.NOTE:  # a note: the timeline entry is all there is
            extra = dict(values or {})
            if change.owner != row.owner:  # claimed, taken over, claimed by replying, or freed
                extra["claimed_at"] = now if change.owner else None
            done = await conn.execute(
                update(TICKET)
                .where(
                    t.id == ticket_id,
                    t.status == row.status,
                    t.owner.is_not_distinct_from(row.owner),
                )
                .values(status=change.status.value, owner=change.owner, updated_at=now, **extra)
            )
            if done.rowcount != 1:  # someone else changed it between our read and write
                raise TicketConflict("The ticket changed meanwhile; look at it again.")
        await conn.execute(
            TICKET_EVENT.insert().values(
                ticket_id=ticket_id,
                kind=action.value,
                actor=by,
                from_status=row.status,
                to_status=change.status.value,
                created_at=now,
                **(event or {}),
            )
        )
        return row

    async def _announce(self, ticket_id: int, change: str, *queues: str) -> None:
        """Tell the consoles (live view) that a ticket changed; best effort."""
        for queue in dict.fromkeys(queues):
            body = json.dumps({"ticket_id": ticket_id, "queue": queue, "change": change})
            try:
                await self.publisher.js.publish(
                    _changed_subject(queue), body.encode(), timeout=self.publisher.timeout
                )
            except Exception:
                log.warning("ticket %s changed; consoles not told", ticket_id, exc_info=True)

    async def claim(
        self,
        ticket_id: int,
        by: str,
        *,
        admin: bool = False,
        allowed: Collection[str] | None = None,
    ) -> TicketDetail:
        async with self.engine.begin() as conn:
            row = await self._change(
                conn, ticket_id, Action.CLAIM, by, admin=admin, allowed=allowed, now=self.clock()
            )
        await self._announce(ticket_id, Action.CLAIM, row.queue)
        return await self.get(ticket_id, allowed=allowed)

    async def reply(
        self,
        ticket_id: int,
        text: str,
        author: str,
        *,
        admin: bool = False,
        allowed: Collection[str] | None = None,
    ) -> tuple[str, bool]:
        """Store an agent's reply, send it on the resident's own channel, and wait for the
        resident (status "waiting").

        Returns the message id and whether it was queued for delivery; a reply that could
        not be queued stays "pending" in the transcript.
        """
        now = self.clock()
        message_id = new_id()
        async with self.engine.begin() as conn:
            row = await self._change(
                conn,
                ticket_id,
                Action.REPLY,
                author,
                admin=admin,
                allowed=allowed,
                now=now,
                values={"first_response_at": func.coalesce(TICKET.c.first_response_at, now)},
                event={"message_id": message_id},
            )
            await conn.execute(
                MESSAGE.insert().values(
                    id=message_id,
                    conversation_id=row.conversation_id,
                    dedup_key=None,
                    role=Role.AGENT.value,
                    channel=row.channel,
                    text=text,
                    sources=[],
                    status=PENDING,
                    in_reply_to=None,
                    author=author,
                    created_at=now,
                )
            )
        channel = Channel(row.channel)
        try:
            await self.publisher.publish(
                ReplyRequested(
                    conversation_id=row.conversation_id,
                    message_id=message_id,
                    channel=channel,
                    recipient=Address.parse(row.address),
                    role=Role.AGENT,
                    text=text,
                    thread=row.thread,
                    case_number=row.case_number,
                    language=row.language,
                )
            )
        except Exception:
            log.warning("agent reply %s stored but not queued yet", message_id, exc_info=True)
            return message_id, False
        await self.set_delivery(message_id, status_after_publish(channel), only_from=PENDING)
        await self._announce(ticket_id, Action.REPLY, row.queue)
        return message_id, True

    async def set_delivery(
        self, message_id: str, status: str, *, only_from: str | None = None
    ) -> bool:
        """Record a reply's delivery status (``only_from``: only if it is still that)."""
        q = update(MESSAGE).where(MESSAGE.c.id == message_id).values(status=status)
        if only_from is not None:
            q = q.where(MESSAGE.c.status == only_from)
        async with self.engine.begin() as conn:
            return (await conn.execute(q)).rowcount == 1

    async def note(
        self,
        ticket_id: int,
        text: str,
        by: str,
        *,
        allowed: Collection[str] | None = None,
    ) -> TicketDetail:
        """An internal note: for colleagues in the timeline, never for the resident."""
        async with self.engine.begin() as conn:
            row = await self._change(
                conn,
                ticket_id,
                Action.NOTE,
                by,
                admin=False,
                allowed=allowed,
                now=self.clock(),
                event={"note": text},
            )
        await self._announce(ticket_id, Action.NOTE, row.queue)
        return await self.get(ticket_id, allowed=allowed)

    async def transfer(
        self,
        ticket_id: int,
        to_queue: str,
        note: str,
        by: str,
        *,
        admin: bool = False,
        allowed: Collection[str] | None = None,
    ) -> TicketDetail:
        """Move the ticket to ``to_queue`` (open, unclaimed there) with a note saying why.
        Whether the caller may use ``to_queue`` is the caller's check (the API's)."""
        if to_queue not in self.queues:
            raise UnknownQueue(to_queue)
        async with self.engine.begin() as conn:
            current = (
                await conn.execute(select(TICKET.c.queue).where(TICKET.c.id == ticket_id))
            ).scalar_one_or_none()
            if current == to_queue:
                raise TicketConflict("The ticket is already in that queue.")
            row = await self._change(
                conn,
                ticket_id,
                Action.TRANSFER,
                by,
                admin=admin,
                allowed=allowed,
                now=self.clock(),
                values={"queue": to_queue},
                event={"from_queue": current, "to_queue": to_queue, "note": note},
            )
        await self._announce(ticket_id, Action.TRANSFER, row.queue, to_queue)
        return await self.get(ticket_id)

    async def resolve(
        self,
        ticket_id: int,
        by: str,
        *,
        admin: bool = False,
        allowed: Collection[str] | None = None,
    ) -> TicketDetail:
        """Close the case; the conversation goes back to the AI for new questions."""
        now = self.clock()
        async with self.engine.begin() as conn:
            row = await self._change(
                conn,
                ticket_id,
                Action.RESOLVE,
                by,
                admin=admin,
                allowed=allowed,
                now=now,
                values={"resolved_at": now, "resolved_by": by},
            )
            await _set_owner(conn, row.conversation_id, "ai", now, clarifications=0, ai_turns=0)
        try:
            await self.publisher.publish(
                HandoffResolved(
                    conversation_id=row.conversation_id,
                    ticket_id=ticket_id,
                    case_number=row.case_number,
                    queue=row.queue,
                    resolved_by=by,
                )
            )
        except Exception:  # resolved all the same; only the live views miss it
            log.warning("ticket %s resolved; event not published", ticket_id, exc_info=True)
        return await self.get(ticket_id, allowed=allowed)

    async def reopen(
        self,
        ticket_id: int,
        by: str,
        *,
        allowed: Collection[str] | None = None,
    ) -> TicketDetail:
        """Open a resolved case again; a person owns the conversation again."""
        now = self.clock()
        async with self.engine.begin() as conn:
            conversation = select(TICKET.c.conversation_id).where(TICKET.c.id == ticket_id)
            other = (
                await conn.execute(
                    select(TICKET.c.case_number).where(
                        TICKET.c.conversation_id == conversation.scalar_subquery(),
                        TICKET.c.id != ticket_id,
                        TICKET.c.status.in_(ACTIVE),
                    )
                )
            ).scalar()
            if other is not None:
                # One case at a time per conversation: the router adds messages to that one.
                raise TicketConflict(f"The conversation has another open ticket, {other}.")
            row = await self._change(
                conn,
                ticket_id,
                Action.REOPEN,
                by,
                admin=False,
                allowed=allowed,
                now=now,
                values={"resolved_at": None, "resolved_by": None},
            )
            await _set_owner(conn, row.conversation_id, "human", now)
        await self._announce(ticket_id, Action.REOPEN, row.queue)
        return await self.get(ticket_id, allowed=allowed)
