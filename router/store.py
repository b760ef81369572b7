"""The router's persistence: a whole batch of messages per transaction.

One commit per message caps a worker near 700 msgs/s on this machine kind; one
transaction per fetched batch is several times faster, and acking only after the commit
keeps every message safe. Everything here is idempotent so a redelivered batch is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agents.base import Assessment
from handoff.transitions import Action as TicketAction
from handoff.transitions import Status, apply
from router.compose import Outgoing
from router.db import insert_many_ignore
from router.decide import Action, AgentFailure, Decision, Owner
from router.events import (
    Address,
    Channel,
    Event,
    HandoffRequested,
    MessageReceived,
    ReplyRequested,
    Role,
    SourceRef,
    new_id,
    utcnow,
)
from router.identity import contact_key
from router.tables import (
    ConversationRow,
    DecisionRow,
    MessageRow,
    TicketEventRow,
    TicketRow,
    new_version,
)

CONVERSATION = ConversationRow.__table__  # type: ignore[attr-defined]
MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]
DECISION = DecisionRow.__table__  # type: ignore[attr-defined]
TICKET = TicketRow.__table__  # type: ignore[attr-defined]
TICKET_EVENT = TicketEventRow.__table__  # type: ignore[attr-defined]

# Tickets a person is on (handoff.transitions.ACTIVE): new messages are added to them.
OPEN_TICKET_STATUSES = ("open", "claimed", "waiting")


@dataclass(frozen=True, slots=True)
class ConversationState:
    id: str
    # Where replies go: the channel, address and thread the resident last wrote from.
    channel: Channel
    address: str
    language: str | None
    owner: Owner
    ai_turns: int
    clarifications: int
    disclosed: bool
    thread: str | None = None
    # The row's ``version`` token when read: the decision is written only if it still holds.
    version: str | None = None


_STATE_COLUMNS = tuple(
    CONVERSATION.c[name]
    for name in (
        "id",
        "channel",
        "address",
        "thread",
        "language",
        "owner",
        "ai_turns",
        "clarifications",
        "disclosed",
        "version",
    )
)


# The hot path's statements, built once. Building a statement (column operators, IN
# lists, its cache key) cost more CPU than running it: measured on one message a batch,
# the router spent ~5 ms a message in the store, most of it in SQLAlchemy, not in the
# database. Lists go in as expanding parameters.
_c, _m, _t = CONVERSATION.c, MESSAGE.c, TICKET.c
_BY_THREAD = select(_c.thread_key, *_STATE_COLUMNS).where(
    _c.thread_key.in_(bindparam("keys", expanding=True))
)
# Each contact's conversations active since ``since`` or owned by a person, oldest first.
_BY_CONTACT = (
    select(_c.contact, *_STATE_COLUMNS)
    .where(
        _c.contact.in_(bindparam("contacts", expanding=True)),
        or_(_c.updated_at >= bindparam("since"), _c.owner == Owner.HUMAN.value),
    )
    .order_by(_c.updated_at)
)
_ROUTE = (
    update(CONVERSATION)
    .where(_c.id == bindparam("b_id"))
    .values(
        channel=bindparam("b_channel"), address=bindparam("b_address"), thread=bindparam("b_thread")
    )
)
# Stored messages by dedup key, and whether each is decided (redelivered after a crash).
_STORED = select(
    _m.dedup_key,
    _m.id,
    exists().where(DECISION.c.message_id == _m.id).label("decided"),
).where(_m.dedup_key.in_(bindparam("keys", expanding=True)))
# Conversations' open tickets, and those resolved since ``since``, oldest resolved first.
_TICKETS = (
    select(_t.conversation_id, _t.id, _t.case_number, _t.queue, _t.status)
    .where(
        _t.conversation_id.in_(bindparam("ids", expanding=True)),
        or_(
            _t.status.in_(OPEN_TICKET_STATUSES),
            (_t.status == "resolved") & (_t.resolved_at >= bindparam("since")),
        ),
    )
    .order_by(_t.resolved_at, _t.id)
)
# A conversation's new state, only where its version is still the one read at intake.
_DECIDED = (
    update(CONVERSATION)
    .where(_c.id == bindparam("b_id"), _c.version.is_not_distinct_from(bindparam("b_read")))
    .values(
        owner=bindparam("b_owner"),
        language=bindparam("b_language"),
        ai_turns=bindparam("b_ai_turns"),
        clarifications=bindparam("b_clarifications"),
        disclosed=bindparam("b_disclosed"),
        version=bindparam("b_version"),
        updated_at=bindparam("b_now"),
    )
)
_VERSIONS = select(_c.id, _c.version).where(_c.id.in_(bindparam("ids", expanding=True)))
_TICKET_IDS = select(_t.case_number, _t.id).where(
    _t.case_number.in_(bindparam("numbers", expanding=True))
)
_HELD = (
    update(TICKET)
    .where(_t.id == bindparam("b_id"))
    # A ticket once urgent stays urgent.
    .values(updated_at=bindparam("b_now"), urgent=or_(_t.urgent, bindparam("b_urgent")))
)
_INSERT_DECISIONS = DECISION.insert()
_INSERT_MESSAGES = MESSAGE.insert()
_INSERT_TICKETS = TICKET.insert()


def _state(r: Any) -> ConversationState:
    return ConversationState(
        id=r.id,
        channel=Channel(r.channel),
        address=r.address,
        thread=r.thread,
        language=r.language,
        owner=Owner(r.owner),
        ai_turns=r.ai_turns,
        clarifications=r.clarifications,
        disclosed=r.disclosed,
        version=r.version,
    )


@dataclass(frozen=True, slots=True)
class Recorded:
    """What ``RouterStore.record`` wrote: the events to publish once committed, and the
    conversations someone else changed since intake, of which nothing was written."""

    events: list[Event]
    stale: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class OpenTicket:
    id: int
    case_number: str
    queue: str
    # Resolved a short while ago (``RouterStore.reopen_within``): the resident's next
    # message reopens it instead of going to the AI.
    resolved: bool = False


@dataclass(frozen=True, slots=True)
class Intake:
    """A stored inbound message and the state of its conversation before this batch."""

    event: MessageReceived
    message_id: str
    decided: bool
    conversation: ConversationState
    open_ticket: OpenTicket | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything to record for one inbound message."""

    intake: Intake
    decision: Decision
    assessment: Assessment | None
    failure: AgentFailure | None
    agent: str | None
    latency_ms: float
    language: str
    conversation_after: ConversationState
    outgoing: Outgoing | None = None
    outgoing_id: str | None = None
    case_number: str | None = None
    created_at: datetime = field(default_factory=utcnow)


def initial_status(channel: Channel) -> str:
    # A web reply is delivered by being stored: the chat reads it from here.
    return "delivered" if channel is Channel.WEB else "pending"


def _usage_columns(a: Assessment | None) -> dict[str, Any]:
    u = a.usage if a else None
    return {
        "llm_model": u.model if u else None,
        "prompt_version": u.prompt_version if u else None,
        "prompt_tokens": u.prompt_tokens if u else None,
        "completion_tokens": u.completion_tokens if u else None,
        "llm_cost": u.cost if u else None,
        "llm_latency_ms": u.latency_ms if u else None,
        "llm_fallback": u.fallback if u else None,
    }


def _sources_json(sources: Sequence[SourceRef]) -> list[dict[str, Any]]:
    return [s.model_dump() for s in sources]


class RouterStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        reopen_within: timedelta = timedelta(days=3),
        continue_within: timedelta = timedelta(days=3),
    ) -> None:
        self.engine = engine
        self.reopen_within = reopen_within
        # A new thread of a known contact continues a conversation this recent.
        self.continue_within = continue_within

    async def intake(self, events: Sequence[MessageReceived]) -> list[Intake]:
        """Store inbound messages exactly once and load their conversations.

        A message from a thread not seen before continues its contact's recent
        conversation (the same phone number on SMS and WhatsApp, the same email address);
        replies go back on the channel, address and thread the resident last wrote from.
        """
        now = utcnow()
        by_key = {e.thread_key: e for e in events}
        async with self.engine.begin() as conn:
            conversations = await self._conversations_by_thread(conn, set(by_key))
            missing = {k: e for k, e in by_key.items() if k not in conversations}
            if missing:
                await self._open_conversations(conn, missing, conversations, now)
            await self._route_replies(conn, events, conversations)
            await insert_many_ignore(
                conn,
                MESSAGE,
                (
                    {
                        "id": e.message_id,
                        "conversation_id": conversations[e.thread_key].id,
                        "dedup_key": e.dedup_key,
                        "role": Role.RESIDENT.value,
                        "channel": e.channel.value,
                        "text": e.text,
                        "sources": [],
                        "status": "received",
                        "full_text": e.full_text,
                        "attachments": [a.model_dump() for a in e.attachments] or None,
                        "created_at": e.occurred_at,
                    }
                    for e in events
                ),
            )
            stored = await conn.execute(_STORED, {"keys": list({e.dedup_key for e in events})})
            ids: dict[str, str] = {}
            decided: set[str] = set()
            for r in stored:
                ids[r.dedup_key] = r.id
                if r.decided:
                    decided.add(r.id)
            tickets = await self._open_tickets(
                conn,
                {c.id for c in conversations.values()},
                reopenable={c.id for c in conversations.values() if c.owner is Owner.AI},
                since=now - self.reopen_within,
            )
        return [
            Intake(
                event=e,
                message_id=ids[e.dedup_key],
                decided=ids[e.dedup_key] in decided,
                conversation=conversations[e.thread_key],
                open_ticket=tickets.get(conversations[e.thread_key].id),
            )
            for e in events
        ]

    async def _open_conversations(
        self,
        conn: AsyncConnection,
        missing: dict[str, MessageReceived],
        conversations: dict[str, ConversationState],
        now: datetime,
    ) -> None:
        """Find (by contact) or create the conversations of new thread keys, in place."""
        contacts = {k: c for k, e in missing.items() if (c := contact_key(e.sender))}
        if contacts:
            recent = await self._recent_by_contact(
                conn, set(contacts.values()), since=now - self.continue_within
            )
            for key, contact in contacts.items():
                if contact in recent:
                    conversations[key] = recent[contact]
        new = {k: e for k, e in missing.items() if k not in conversations}
        if not new:
            return
        await insert_many_ignore(
            conn,
            CONVERSATION,
            (
                {
                    "id": new_id(),
                    "thread_key": key,
                    "channel": e.channel.value,
                    "address": str(e.sender),
                    "thread": e.thread,
                    "contact": contacts.get(key),
                    "owner": Owner.AI.value,
                    "ai_turns": 0,
                    "clarifications": 0,
                    "disclosed": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for key, e in new.items()
            ),
        )
        conversations.update(await self._conversations_by_thread(conn, set(new)))

    async def _route_replies(
        self,
        conn: AsyncConnection,
        events: Sequence[MessageReceived],
        conversations: dict[str, ConversationState],
    ) -> None:
        """Point each conversation's replies at where its latest message came from (the
        states in ``conversations`` too, in place)."""
        latest: dict[str, MessageReceived] = {}
        for e in events:
            cid = conversations[e.thread_key].id
            if cid not in latest or e.occurred_at >= latest[cid].occurred_at:
                latest[cid] = e
        moved: dict[str, tuple[Channel, str, str | None]] = {}
        for key, state in conversations.items():
            last = latest.get(state.id)
            if last is None:
                continue
            route = (last.channel, str(last.sender), last.thread)
            if (state.channel, state.address, state.thread) != route:
                moved[state.id] = route
                conversations[key] = replace(
                    state, channel=route[0], address=route[1], thread=route[2]
                )
        if moved:
            await conn.execute(
                _ROUTE,
                [
                    {"b_id": cid, "b_channel": ch.value, "b_address": addr, "b_thread": thread}
                    for cid, (ch, addr, thread) in moved.items()
                ],
            )

    async def _conversations_by_thread(
        self, conn: AsyncConnection, keys: set[str]
    ) -> dict[str, ConversationState]:
        rows = await conn.execute(_BY_THREAD, {"keys": list(keys)})
        return {r.thread_key: _state(r) for r in rows}

    async def _recent_by_contact(
        self, conn: AsyncConnection, contacts: set[str], *, since: datetime
    ) -> dict[str, ConversationState]:
        """Each contact's latest conversation active since ``since`` or owned by a person."""
        rows = await conn.execute(_BY_CONTACT, {"contacts": list(contacts), "since": since})
        # Ordered oldest first: the latest conversation of a contact wins.
        return {r.contact: _state(r) for r in rows}

    async def _open_tickets(
        self,
        conn: AsyncConnection,
        conversation_ids: set[str],
        *,
        reopenable: set[str],
        since: datetime,
    ) -> dict[str, OpenTicket]:
        """Each conversation's open ticket; else, for the ``reopenable`` ones, the latest
        ticket resolved since ``since`` (one query for both)."""
        rows = await conn.execute(_TICKETS, {"ids": list(conversation_ids), "since": since})
        found: dict[str, OpenTicket] = {}
        resolved: dict[str, OpenTicket] = {}
        for r in rows:
            was_resolved = r.status == "resolved"
            into = resolved if was_resolved else found
            into[r.conversation_id] = OpenTicket(r.id, r.case_number, r.queue, was_resolved)
        return {
            **{c: ticket for c, ticket in resolved.items() if c in reopenable},
            **found,
        }

    async def record(self, outcomes: Sequence[Outcome]) -> Recorded:
        """Write decisions, replies, tickets and conversation changes in one transaction.

        Only for conversations still as intake read them: another worker, or a person in
        the console, may have decided on one meanwhile (an answer written over a handoff
        would leave a ticket on a conversation the AI thinks it owns). Those are left out
        and returned as ``stale``, to be decided again on their new state.
        """
        if not outcomes:
            return Recorded([])
        async with self.engine.begin() as conn:
            # The conversations first: on SQLite the write lock is taken before any read,
            # on PostgreSQL the rows stay locked until commit.
            stale = await self._update_conversations(conn, outcomes)
            events = await self._write(
                conn, [o for o in outcomes if o.intake.conversation.id not in stale]
            )
        return Recorded(events, frozenset(stale))

    async def _update_conversations(
        self, conn: AsyncConnection, outcomes: Sequence[Outcome]
    ) -> set[str]:
        """Each conversation's state after its outcomes, where its version is still the one
        read at intake; returns the conversations where it was not."""
        # The state after a conversation's last outcome; it still carries the version read.
        last_state = {o.intake.conversation.id: o.conversation_after for o in outcomes}
        versions = {cid: new_version() for cid in last_state}
        now = utcnow()
        updated = await conn.execute(
            _DECIDED,
            [
                {
                    "b_id": s.id,
                    "b_read": s.version,
                    "b_owner": s.owner.value,
                    "b_language": s.language,
                    "b_ai_turns": s.ai_turns,
                    "b_clarifications": s.clarifications,
                    "b_disclosed": s.disclosed,
                    "b_version": versions[s.id],
                    "b_now": now,
                }
                for s in last_state.values()
            ],
        )
        if updated.rowcount == len(versions) and (
            len(versions) == 1 or conn.dialect.supports_sane_multi_rowcount
        ):
            return set()  # every row still held the version read
        # Tokens, not counters: a row another writer moved on holds a token we never made.
        rows = await conn.execute(_VERSIONS, {"ids": list(versions)})
        held: dict[str, str | None] = {r.id: r.version for r in rows}
        return {cid for cid, version in versions.items() if held.get(cid) != version}

    async def _write(self, conn: AsyncConnection, outcomes: Sequence[Outcome]) -> list[Event]:
        """Decisions, replies and tickets of ``outcomes`` inside ``conn``."""
        if not outcomes:
            return []
        events: list[Event] = []
        messages: list[dict[str, Any]] = []
        decisions: list[dict[str, Any]] = []
        new_tickets: list[dict[str, Any]] = []
        for o in outcomes:
            conv = o.intake.conversation
            a = o.assessment
            d = o.decision
            decisions.append(
                {
                    "message_id": o.intake.message_id,
                    "conversation_id": conv.id,
                    "action": d.action.value,
                    "reason": d.reason.value if d.reason else None,
                    "clarify": d.clarify.value if d.clarify else None,
                    "queue": d.queue,
                    "threshold": d.threshold,
                    "policy_version": d.policy_version,
                    "urgent": d.urgent,
                    "agent": o.agent,
                    "failure": o.failure.value if o.failure else None,
                    "language": a.language if a else None,
                    "reply_language": o.language,
                    "intent": a.intent.value if a else None,
                    "department": a.department if a else None,
                    "confidence": a.confidence if a else None,
                    "personal_case": a.personal_case if a else False,
                    "wants_human": a.wants_human if a else False,
                    "draft": a.answer if a else None,
                    "sources": _sources_json(a.sources) if a else [],
                    "ranked_doc_ids": list(a.ranked_doc_ids) if a else [],
                    "agent_reason": a.reason if a else None,
                    "latency_ms": o.latency_ms,
                    **_usage_columns(a),
                    "ticket_id": None,
                    "created_at": o.created_at,
                }
            )
            if o.outgoing is not None:
                assert o.outgoing_id is not None
                messages.append(
                    {
                        "id": o.outgoing_id,
                        "conversation_id": conv.id,
                        "dedup_key": None,
                        "role": o.outgoing.role.value,
                        "channel": conv.channel.value,
                        "text": o.outgoing.text,
                        "sources": _sources_json(o.outgoing.sources),
                        "status": initial_status(conv.channel),
                        "in_reply_to": o.intake.message_id,
                        "author": o.agent if o.outgoing.role is Role.AI else None,
                        "created_at": o.created_at,
                    }
                )
                events.append(
                    ReplyRequested(
                        conversation_id=conv.id,
                        message_id=o.outgoing_id,
                        channel=conv.channel,
                        recipient=Address.parse(conv.address),
                        role=o.outgoing.role,
                        text=o.outgoing.text,
                        sources=o.outgoing.sources,
                        in_reply_to=o.intake.message_id,
                        thread=conv.thread,
                        case_number=o.case_number,
                        language=o.language,
                    )
                )
            if d.action is Action.HANDOFF:
                assert o.case_number is not None and d.reason is not None
                new_tickets.append(
                    {
                        "case_number": o.case_number,
                        "conversation_id": conv.id,
                        "queue": d.queue,
                        "status": "open",
                        "reason": d.reason.value,
                        "urgent": d.urgent,
                        "language": o.language,
                        "department": a.department if a else None,
                        "confidence": a.confidence if a else None,
                        "ai_draft": a.answer if a else None,
                        "sources": _sources_json(a.sources) if a else [],
                        "created_at": o.created_at,
                        "updated_at": o.created_at,
                    }
                )

        ticket_ids: dict[str, int] = {}
        if new_tickets:
            await conn.execute(_INSERT_TICKETS, new_tickets)
            numbers = [t["case_number"] for t in new_tickets]
            ticket_ids = dict((await conn.execute(_TICKET_IDS, {"numbers": numbers})).all())
        # The ticket each held message goes on: one this batch opened earlier for its
        # conversation (a hold right after a handoff), else the one open at intake.
        opened: dict[str, OpenTicket] = {}
        holds: dict[int, OpenTicket] = {}
        for i, (o, row) in enumerate(zip(outcomes, decisions, strict=True)):
            cid = o.intake.conversation.id
            if o.case_number is not None:
                ticket = OpenTicket(ticket_ids[o.case_number], o.case_number, o.decision.queue)
                opened[cid] = ticket
                row["ticket_id"] = ticket.id
            elif o.decision.action is Action.HOLD:
                held_on = opened.get(cid, o.intake.open_ticket)
                if held_on is not None:
                    holds[i] = held_on
                    row["ticket_id"] = held_on.id
        touched_tickets = [
            {
                "b_id": t.id,
                "b_now": outcomes[i].created_at,
                "b_urgent": outcomes[i].decision.urgent,
            }
            for i, t in holds.items()
        ]
        await conn.execute(_INSERT_DECISIONS, decisions)
        if messages:
            await conn.execute(_INSERT_MESSAGES, messages)
        if touched_tickets:
            await conn.execute(_HELD, touched_tickets)
            await _resident_answered(conn, touched_tickets)

        for i, o in enumerate(outcomes):
            if o.decision.action is Action.HANDOFF and o.case_number is not None:
                events.append(
                    HandoffRequested(
                        conversation_id=o.intake.conversation.id,
                        ticket_id=ticket_ids[o.case_number],
                        case_number=o.case_number,
                        queue=o.decision.queue,
                        reason=o.decision.reason.value if o.decision.reason else "",
                        urgent=o.decision.urgent,
                        language=o.language,
                    )
                )
            elif i in holds:
                t = holds[i]
                events.append(
                    HandoffRequested(
                        conversation_id=o.intake.conversation.id,
                        ticket_id=t.id,
                        case_number=t.case_number,
                        queue=t.queue,
                        reason="resident_message",
                        urgent=o.decision.urgent,
                        language=o.language,
                        new_ticket=False,
                    )
                )
        return events

    async def replies_to(self, message_ids: Sequence[str]) -> list[ReplyRequested]:
        """Replies already stored for these inbound messages (to publish again after a crash)."""
        if not message_ids:
            return []
        m = MESSAGE.c
        cv = CONVERSATION.c
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(
                    m.id,
                    m.conversation_id,
                    m.channel,
                    m.role,
                    m.text,
                    m.sources,
                    m.in_reply_to,
                    cv.address,
                    cv.thread,
                    cv.language,
                )
                .join(CONVERSATION, cv.id == m.conversation_id)
                .where(m.in_reply_to.in_(message_ids))
            )
            return [
                ReplyRequested(
                    conversation_id=r.conversation_id,
                    message_id=r.id,
                    channel=Channel(r.channel),
                    recipient=Address.parse(r.address),
                    role=Role(r.role),
                    text=r.text,
                    sources=tuple(SourceRef.model_validate(s) for s in r.sources),
                    in_reply_to=r.in_reply_to,
                    thread=r.thread,
                    language=r.language,
                )
                for r in rows
            ]


# The ticket statuses a resident's message changes, by the ticket rules.
REOPENED_BY_RESIDENT: dict[Status, Status] = {
    was: change.status
    for was in Status
    if (change := apply(TicketAction.RESIDENT_MESSAGE, was, None, "resident")).status != was
}


async def _resident_answered(conn: AsyncConnection, touched: list[dict[str, Any]]) -> None:
    """A ticket waiting for the resident, or resolved a short while ago, is open again once
    they write (in the same transaction as their message), and its timeline says so."""
    first: dict[int, datetime] = {}
    for t in touched:
        first.setdefault(t["b_id"], t["b_now"])
    events = []
    for was, now in REOPENED_BY_RESIDENT.items():
        unresolved = {"resolved_at": None, "resolved_by": None} if was is Status.RESOLVED else {}
        reopened = (
            await conn.execute(
                update(TICKET)
                .where(TICKET.c.id.in_(first), TICKET.c.status == was.value)
                .values(status=now.value, **unresolved)
                .returning(TICKET.c.id)
            )
        ).scalars()
        events += [
            {
                "ticket_id": ticket_id,
                "kind": "resident_message",
                "actor": "resident",
                "from_status": was.value,
                "to_status": now.value,
                "created_at": first[ticket_id],
            }
            for ticket_id in reopened
        ]
    if events:
        await conn.execute(TICKET_EVENT.insert(), events)


def after(state: ConversationState, **changes: Any) -> ConversationState:
    return replace(state, **changes)
