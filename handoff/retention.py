"""Privacy: conversations deleted after the retention period, and one resident's data
exported or deleted on request (GDPR Art. 5(1)(e), 15 and 17).

**Retention.** A conversation whose last activity (``conversation.updated_at`` and its
latest message) is older than the limit for its kind goes, with everything that hangs off
it: messages, tickets, their timeline (``ticket_event``, with the internal notes), the
AI labels and their history, and the email thread headers kept for replies
(``channel_state`` ``email:thread:<root>``, which hold the subject). The limits are
``NEUVONTA_RETENTION_WEB_DAYS`` for anonymous web chats and
``NEUVONTA_RETENTION_CONTACT_DAYS`` for identified contacts (SMS, WhatsApp, Telegram,
email); 0 keeps them forever. The kind is that of the thread the conversation began on
(web chats never join another channel's conversation). A conversation with a ticket still
open, claimed or waiting is never removed: a person is working on it; it goes once the
case is resolved and old enough.

**What the statistics keep.** The admin figures (``handoff.admin.insights``: volume,
AI resolution, handoff reasons) and the what-if simulator (``handoff.whatif``) read the
``decision`` rows, which may look back up to 366 days (``ANALYTICS_DAYS``, the longest
period the admin API offers), longer than a web chat is kept. So that these figures
do not change when the resident data goes, each decision outlives its conversation in
anonymised form, as storage limitation allows for data that no longer relate to a
person (GDPR Recital 26):

- kept: when, the channel, the languages, queue, department, action and reason codes,
  confidence, threshold and policy version, the public knowledge-base documents cited,
  the model and its token counts;
- removed: every text (the message, the AI's draft, which becomes ``[removed]`` so the
  what-if still sees that there was one, the agent's reasoning), the address, contact
  and thread, the provider's message id, the ticket and case number, every staff name;
- re-keyed: the decision, its message and its conversation get new random ids, so that
  nothing the resident, a log or a provider has seen (message ids the web chat returned,
  conversation ids in events) leads to them.

The decision's foreign key needs a message row and the figures read the channel from a
conversation row, so each such decision keeps an empty resident message (no text, no
ids) in an empty conversation whose ``thread_key`` is ``retained:<new id>``: no channel
address has that form, so nothing routes, continues or shows them (web chat, console,
cross-channel matching). These go too once ``ANALYTICS_DAYS`` have passed, when no
figure can show them any longer. Ticket figures (first response times, label rates) are
not kept beyond retention: a ticket without its conversation would show in the console
as an empty case. An erasure request (``delete_resident``) keeps nothing of this.

Also on the same clock: the email thread headers of threads older than the contact limit,
opt-out rows that no longer opt out (START after STOP) older than it, and dead letters
(raw events, with the resident's text) older than the longer of the two limits (any
limit 0: kept).

**Opt-outs stay.** A row that says an address opted out (SMS STOP) is kept by retention
and by an erasure request alike: it is the resident's own instruction not to be
messaged, and it can only be honoured while it is remembered (Art. 17(3)(b), 21(3); it
holds the address and the time, nothing else). START clears it; then it goes.

**Export (Art. 15).** ``export_resident`` gathers every conversation started from the
address or by the same contact on another channel (``router.identity.contact_key``: SMS
and WhatsApp share the phone number), with every message (text, the whole text of an
email, attachment metadata, delivery status), the tickets (case number, queue, status,
dates, their timeline including staff's internal notes), the automated decisions about
their messages (Art. 15(1)(h)), opt-outs, email thread subjects and dead letters. Internal
notes are personal data about the resident too (CJEU C-434/16 Nowak) and are included;
staff usernames are not (they are the staff's data; the actor shows as ``staff``). The
official handling the request reviews the export before handing it over, for any
restriction under Art. 15(4) or the Data Protection Act 1050/2018 § 34.

The events still in the JetStream streams (14 days, dead letters 90) are erased by
``neuvonta residents delete`` through ``router.bus.erase_events``; retention leaves them to
expire by themselves. Out of reach: the providers' own logs (Twilio, the mail relay), whose
retention is set with the provider.

Everything happens in one transaction per batch of conversations, children before
parents, so foreign keys hold on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, case, delete, func, not_, or_, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from handoff.analytics import ANALYTICS_DAYS
from handoff.transitions import ACTIVE
from router.events import Address, Channel, new_id, utcnow
from router.identity import contact_key, normalise_phone
from router.tables import (
    AiLabelChangeRow,
    AiLabelRow,
    ChannelStateRow,
    ConversationRow,
    DeadLetterRow,
    DecisionRow,
    MessageRow,
    OptOutRow,
    TicketEventRow,
    TicketRow,
    UTCDateTime,
)

if TYPE_CHECKING:
    from router.settings import Settings

log = logging.getLogger(__name__)

CONVERSATION = ConversationRow.__table__  # type: ignore[attr-defined]
MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]
DECISION = DecisionRow.__table__  # type: ignore[attr-defined]
TICKET = TicketRow.__table__  # type: ignore[attr-defined]
TICKET_EVENT = TicketEventRow.__table__  # type: ignore[attr-defined]
LABEL = AiLabelRow.__table__  # type: ignore[attr-defined]
LABEL_CHANGE = AiLabelChangeRow.__table__  # type: ignore[attr-defined]
OPT_OUT = OptOutRow.__table__  # type: ignore[attr-defined]
STATE = ChannelStateRow.__table__  # type: ignore[attr-defined]
DEAD_LETTER = DeadLetterRow.__table__  # type: ignore[attr-defined]

# The thread key of a conversation kept only for the figures (no address has this form).
RETAINED = "retained:"
# What a removed AI draft reads as: the what-if needs to know there was one.
REMOVED = "[removed]"
EMAIL_THREAD = "email:thread:"
# Conversations per transaction: big enough to be quick, small enough not to hold the
# SQLite write lock for long while the router works beside it.
BATCH = 200


# ---------------------------------------------------------------- the rules (pure)


class Kind(StrEnum):
    """Which limit applies to a conversation."""

    WEB = "web"  # an anonymous web chat
    CONTACT = "contact"  # SMS, WhatsApp, Telegram, email: an identified contact
    STATISTICS = "statistics"  # kept without personal data for the figures


def kind_of(thread_key: str) -> Kind:
    """The kind of a conversation from the thread it began on."""
    if thread_key.startswith(RETAINED):
        return Kind.STATISTICS
    if thread_key.startswith(f"{Channel.WEB.value}:"):
        return Kind.WEB
    return Kind.CONTACT


@dataclass(frozen=True, slots=True)
class Limits:
    """Days to keep each kind; 0: forever."""

    web_days: int
    contact_days: int
    statistics_days: int = ANALYTICS_DAYS

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.retention_web_days, settings.retention_contact_days)

    def days(self, kind: Kind) -> int:
        return {
            Kind.WEB: self.web_days,
            Kind.CONTACT: self.contact_days,
            Kind.STATISTICS: self.statistics_days,
        }[kind]

    def cutoff(self, kind: Kind, now: datetime) -> datetime | None:
        """Activity before this is too old; None: kept forever."""
        days = self.days(kind)
        return now - timedelta(days=days) if days > 0 else None

    def dead_letter_cutoff(self, now: datetime) -> datetime | None:
        """A dead letter may hold any kind's message: kept as long as the longest limit."""
        if self.web_days == 0 or self.contact_days == 0:
            return None
        return now - timedelta(days=max(self.web_days, self.contact_days))


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    """What the retention rule looks at."""

    id: str
    thread_key: str
    updated_at: datetime
    last_message_at: datetime | None = None
    active_ticket: bool = False

    @property
    def kind(self) -> Kind:
        return kind_of(self.thread_key)

    @property
    def last_activity(self) -> datetime:
        if self.last_message_at is None:
            return self.updated_at
        return max(self.updated_at, self.last_message_at)


def too_old(facts: ConversationFacts, limits: Limits, now: datetime) -> bool:
    """Past its limit, whether or not a ticket protects it."""
    cutoff = limits.cutoff(facts.kind, now)
    return cutoff is not None and facts.last_activity < cutoff


def expired(facts: ConversationFacts, limits: Limits, now: datetime) -> bool:
    """Whether retention deletes this conversation now: past its limit, and no person is
    working on a case of it."""
    return too_old(facts, limits, now) and not facts.active_ticket


def select_expired(
    conversations: Iterable[ConversationFacts], limits: Limits, now: datetime
) -> list[ConversationFacts]:
    return [c for c in conversations if expired(c, limits, now)]


def keeps_statistics(facts: ConversationFacts, now: datetime) -> bool:
    """Whether its decisions are still within the figures' reach (worth keeping, anonymised)."""
    return facts.kind is not Kind.STATISTICS and facts.last_activity >= now - timedelta(
        days=ANALYTICS_DAYS
    )


@dataclass(frozen=True, slots=True)
class Resident:
    """Who an erasure or access request is about: an address and, for a phone number or
    an email address, the same person on the other channels."""

    address: Address
    contact: str | None
    # The address's string form on every channel it may have written from.
    addresses: frozenset[str]


def resident_of(address: Address) -> Resident:
    contact = contact_key(address)
    addresses = {str(address)}
    if address.channel in (Channel.SMS, Channel.WHATSAPP):
        phone = normalise_phone(address.value)
        if phone is not None:
            addresses |= {f"{Channel.SMS.value}:{phone}", f"{Channel.WHATSAPP.value}:{phone}"}
    return Resident(address=address, contact=contact, addresses=frozenset(addresses))


def parse_address(text: str) -> Address:
    """The typed string form (``sms:+358401234567``, ``email:a@b.fi``, ``web:<session>``);
    a ValueError that says what is wrong and what the form is."""
    channels = ", ".join(c.value for c in Channel)
    form = f"expected <channel>:<value> with a channel of {channels}, e.g. sms:+358401234567"
    channel, sep, value = text.strip().partition(":")
    if not sep or not value:
        raise ValueError(f"not an address: {text!r} ({form})")
    if channel not in {c.value for c in Channel}:
        raise ValueError(f"unknown channel {channel!r} in {text!r} ({form})")
    try:
        return Address.parse(text.strip())
    except ValueError as e:
        raise ValueError(f"not an address: {text!r} ({form})") from e


# ---------------------------------------------------------------- reports


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What a retention run deleted (or, in a dry run, would delete)."""

    dry_run: bool = False
    # Conversations past their limit and deleted, per kind.
    conversations: dict[str, int] = field(default_factory=dict)
    # Past their limit but kept: a ticket of theirs is still active.
    kept_active: int = 0
    # Rows deleted, per table.
    deleted: dict[str, int] = field(default_factory=dict)
    # Rows kept for the figures without personal data, per table.
    anonymised: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


@dataclass(frozen=True, slots=True)
class ResidentDeletion:
    """What an erasure request removed (or, in a dry run, would remove)."""

    deleted: dict[str, int]
    # Opt-outs kept: the resident's instruction not to be messaged.
    opt_outs_kept: int
    # Case numbers of tickets that were still active.
    active_cases: list[str]
    # What names the resident in raw events (addresses, conversation ids): the copies in
    # the JetStream streams are found by these (``router.bus.erase_events``).
    needles: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


# ---------------------------------------------------------------- the purge (one transaction)


async def _count(conn: AsyncConnection, statement: Any) -> int:
    result = await conn.execute(statement)
    return max(int(result.rowcount or 0), 0)


def _email_threads(thread_key: str, thread: str | None) -> set[str]:
    """The ``channel_state`` keys of a conversation's email threads that we can name."""
    keys = {f"{EMAIL_THREAD}{thread}"} if thread else set()
    if thread_key.startswith(f"{Channel.EMAIL.value}:") and "#" in thread_key:
        keys.add(f"{EMAIL_THREAD}{thread_key.partition('#')[2]}")
    return keys


async def _purge(
    conn: AsyncConnection, ids: Collection[str], keep_statistics: Collection[str] = ()
) -> tuple[Counter[str], Counter[str]]:
    """Delete the conversations ``ids`` and everything that hangs off them, inside the
    caller's transaction; the decisions of those in ``keep_statistics`` stay, anonymised.
    Returns the rows deleted and the rows kept anonymised, per table."""
    deleted: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    if not ids:
        return deleted, kept
    ids = list(ids)
    tickets = list(
        (await conn.execute(select(TICKET.c.id).where(TICKET.c.conversation_id.in_(ids))))
        .scalars()
        .all()
    )
    if tickets:
        for table in (LABEL_CHANGE, LABEL, TICKET_EVENT):
            deleted[table.name] += await _count(
                conn, delete(table).where(table.c.ticket_id.in_(tickets))
            )
    threads = await conn.execute(
        select(CONVERSATION.c.thread_key, CONVERSATION.c.thread).where(CONVERSATION.c.id.in_(ids))
    )
    state_keys = {key for r in threads for key in _email_threads(r.thread_key, r.thread)}

    messages = select(MESSAGE.c.id).where(MESSAGE.c.conversation_id.in_(ids))
    if keep_statistics:
        keep = set(keep_statistics)
        kept += await _anonymise_decisions(conn, [i for i in ids if i in keep])
    deleted[DECISION.name] += await _count(
        conn,
        delete(DECISION).where(
            or_(DECISION.c.message_id.in_(messages), DECISION.c.conversation_id.in_(ids))
        ),
    )
    deleted[TICKET.name] += await _count(
        conn, delete(TICKET).where(TICKET.c.conversation_id.in_(ids))
    )
    deleted[MESSAGE.name] += await _count(
        conn, delete(MESSAGE).where(MESSAGE.c.conversation_id.in_(ids))
    )
    deleted[CONVERSATION.name] += await _count(
        conn, delete(CONVERSATION).where(CONVERSATION.c.id.in_(ids))
    )
    if state_keys:
        deleted[STATE.name] += await _count(conn, delete(STATE).where(STATE.c.key.in_(state_keys)))
    return deleted, kept


async def _anonymise_decisions(conn: AsyncConnection, ids: Sequence[str]) -> Counter[str]:
    """Move the decisions of the conversations ``ids`` onto new, empty stand-ins: a
    conversation and a message per decision with new ids and nothing of the resident."""
    kept: Counter[str] = Counter()
    if not ids:
        return kept
    d, m, c = DECISION.c, MESSAGE.c, CONVERSATION.c
    rows = (
        await conn.execute(
            select(
                d.message_id,
                m.conversation_id,
                m.channel,
                m.created_at,
                d.created_at.label("decided_at"),
            )
            .join(MESSAGE, m.id == d.message_id)
            .where(m.conversation_id.in_(ids))
        )
    ).all()
    if not rows:
        return kept
    originals = {
        r.id: r
        for r in await conn.execute(
            select(c.id, c.channel, c.language, c.created_at).where(
                c.id.in_({r.conversation_id for r in rows})
            )
        )
    }
    stand_in = {cid: new_id() for cid in originals}
    last: dict[str, datetime] = {}
    for r in rows:
        last[r.conversation_id] = max(r.decided_at, last.get(r.conversation_id, r.decided_at))
    await conn.execute(
        CONVERSATION.insert(),
        [
            {
                "id": stand_in[cid],
                "thread_key": f"{RETAINED}{stand_in[cid]}",
                "channel": o.channel,
                "address": f"{RETAINED}{stand_in[cid]}",
                "thread": None,
                "contact": None,
                "language": o.language,
                "owner": "ai",
                "ai_turns": 0,
                "clarifications": 0,
                "disclosed": False,
                "created_at": o.created_at,
                "updated_at": last[cid],
            }
            for cid, o in originals.items()
        ],
    )
    kept[CONVERSATION.name] += len(originals)
    moved = {r.message_id: new_id() for r in rows}
    await conn.execute(
        MESSAGE.insert(),
        [
            {
                "id": moved[r.message_id],
                "conversation_id": stand_in[r.conversation_id],
                "dedup_key": None,
                "role": "resident",
                "channel": r.channel,
                "text": "",
                "sources": [],
                "status": "received",
                "created_at": r.created_at,
            }
            for r in rows
        ],
    )
    kept[MESSAGE.name] += len(rows)
    await conn.execute(
        update(DECISION)
        .where(d.message_id == bindparam("b_old"))
        .values(
            message_id=bindparam("b_new"),
            conversation_id=bindparam("b_conversation"),
            ticket_id=None,
            agent_reason=None,
            # The draft's words go; that there was one stays (the what-if asks).
            draft=case((func.coalesce(d.draft, "") == "", d.draft), else_=REMOVED),
        ),
        [
            {
                "b_old": r.message_id,
                "b_new": moved[r.message_id],
                "b_conversation": stand_in[r.conversation_id],
            }
            for r in rows
        ],
    )
    kept[DECISION.name] += len(rows)
    return kept


# ---------------------------------------------------------------- retention


def _candidates(limits: Limits, now: datetime) -> ColumnElement[bool] | None:
    """Conversations whose own ``updated_at`` is past their kind's limit (the rule then
    looks at their messages and tickets); None when every kind is kept forever."""
    c = CONVERSATION.c
    web = c.thread_key.startswith(f"{Channel.WEB.value}:")
    retained = c.thread_key.startswith(RETAINED)
    by_kind = {
        Kind.WEB: web,
        Kind.STATISTICS: retained,
        Kind.CONTACT: not_(or_(web, retained)),
    }
    parts = [
        and_(test, c.updated_at < cutoff)
        for kind, test in by_kind.items()
        if (cutoff := limits.cutoff(kind, now)) is not None
    ]
    return or_(*parts) if parts else None


async def _facts(conn: AsyncConnection, ids: Collection[str]) -> list[ConversationFacts]:
    c, m, t = CONVERSATION.c, MESSAGE.c, TICKET.c
    ids = list(ids)
    last_message: dict[str, datetime] = dict(
        (
            await conn.execute(
                select(m.conversation_id, type_coerce(func.max(m.created_at), UTCDateTime()))
                .where(m.conversation_id.in_(ids))
                .group_by(m.conversation_id)
            )
        ).all()
    )
    active = set(
        (
            await conn.execute(
                select(t.conversation_id)
                .where(t.conversation_id.in_(ids), t.status.in_(ACTIVE))
                .distinct()
            )
        ).scalars()
    )
    rows = await conn.execute(select(c.id, c.thread_key, c.updated_at).where(c.id.in_(ids)))
    return [
        ConversationFacts(
            id=r.id,
            thread_key=r.thread_key,
            updated_at=r.updated_at,
            last_message_at=last_message.get(r.id),
            active_ticket=r.id in active,
        )
        for r in rows
    ]


async def _lock(conn: AsyncConnection, ids: Collection[str]) -> None:
    """Hold the conversations until commit (PostgreSQL; SQLite has one writer anyway): a
    message arriving meanwhile waits, then finds its conversation gone and starts anew."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            select(CONVERSATION.c.id).where(CONVERSATION.c.id.in_(list(ids))).with_for_update()
        )


async def _retention_batch(
    conn: AsyncConnection, ids: Sequence[str], limits: Limits, now: datetime
) -> tuple[list[ConversationFacts], int, Counter[str], Counter[str]]:
    """Inside a transaction: the rule once more on fresh facts, then the purge."""
    await _lock(conn, ids)
    facts = await _facts(conn, ids)
    gone = select_expired(facts, limits, now)
    protected = sum(1 for f in facts if too_old(f, limits, now) and f.active_ticket)
    deleted, kept = await _purge(
        conn, [f.id for f in gone], keep_statistics=[f.id for f in gone if keeps_statistics(f, now)]
    )
    return gone, protected, deleted, kept


async def _loose_ends(conn: AsyncConnection, limits: Limits, now: datetime) -> Counter[str]:
    """What ages apart from conversations: old email thread headers (not of a case still
    active), opt-out rows that no longer opt out, and dead letters."""
    deleted: Counter[str] = Counter()
    contact_cutoff = limits.cutoff(Kind.CONTACT, now)
    if contact_cutoff is not None:
        c, t = CONVERSATION.c, TICKET.c
        in_use = (
            select(EMAIL_THREAD + c.thread)
            .join(TICKET, t.conversation_id == c.id)
            .where(c.thread.is_not(None), t.status.in_(ACTIVE))
        )
        deleted[STATE.name] += await _count(
            conn,
            delete(STATE).where(
                STATE.c.key.startswith(EMAIL_THREAD),
                STATE.c.updated_at < contact_cutoff,
                STATE.c.key.not_in(in_use),
            ),
        )
        deleted[OPT_OUT.name] += await _count(
            conn,
            delete(OPT_OUT).where(
                OPT_OUT.c.opted_out.is_(False), OPT_OUT.c.updated_at < contact_cutoff
            ),
        )
    if (dead_cutoff := limits.dead_letter_cutoff(now)) is not None:
        deleted[DEAD_LETTER.name] += await _count(
            conn, delete(DEAD_LETTER).where(DEAD_LETTER.c.created_at < dead_cutoff)
        )
    return deleted


async def apply_retention(
    engine: AsyncEngine,
    settings: Settings,
    now: datetime,
    *,
    dry_run: bool = False,
    batch: int = BATCH,
) -> RetentionReport:
    """Delete what is past its retention limit at ``now`` (see the module's docstring), in
    one transaction per ``batch`` conversations. A dry run does the same work and rolls
    every transaction back: its counts are exactly what a real run would delete."""
    limits = Limits.of(settings)
    where = _candidates(limits, now)
    kinds: Counter[str] = Counter()
    deleted: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    protected = 0
    after = ""
    while where is not None:
        c = CONVERSATION.c
        async with engine.connect() as conn:
            ids = list(
                (
                    await conn.execute(
                        select(c.id).where(where, c.id > after).order_by(c.id).limit(batch)
                    )
                ).scalars()
            )
        if not ids:
            break
        # Keyset paging: conversations the rule keeps are passed by, not met again.
        after = ids[-1]
        async with engine.connect() as conn, _transaction(conn, commit=not dry_run):
            gone, held, rows, anonymised = await _retention_batch(conn, ids, limits, now)
        kinds.update(f.kind.value for f in gone)
        protected += held
        deleted += rows
        kept += anonymised
    async with engine.connect() as conn, _transaction(conn, commit=not dry_run):
        deleted += await _loose_ends(conn, limits, now)
    return RetentionReport(
        dry_run=dry_run,
        conversations=dict(kinds),
        kept_active=protected,
        deleted=_nonzero(deleted),
        anonymised=_nonzero(kept),
    )


@contextlib.asynccontextmanager
async def _transaction(conn: AsyncConnection, *, commit: bool) -> AsyncIterator[None]:
    """A writing transaction that commits, or (a dry run) always rolls back.

    On SQLite it takes the write lock first: a transaction that read before the router's
    latest commit could not write afterwards, and would fail instead of waiting its turn.
    """
    trans = await conn.begin()
    try:
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield
    except BaseException:
        await trans.rollback()
        raise
    if commit:
        await trans.commit()
    else:
        await trans.rollback()


def _nonzero(rows: Mapping[str, int]) -> dict[str, int]:
    """The tables with a count, by name."""
    return {table: n for table, n in sorted(rows.items()) if n}


def counts(rows: Mapping[str, int]) -> str:
    """``3 conversation, 12 message`` (or ``nothing``)."""
    return ", ".join(f"{n} {table}" for table, n in rows.items()) or "nothing"


def describe(report: RetentionReport) -> str:
    """One log line."""
    line = f"retention: deleted {counts(report.deleted)}"
    if report.anonymised:
        line += f"; kept for the figures without personal data: {counts(report.anonymised)}"
    if report.kept_active:
        line += f"; {report.kept_active} old conversations kept for an active case"
    return line


async def run_retention(
    engine: AsyncEngine, settings: Settings, stopping: asyncio.Event, every: float = 3600.0
) -> None:
    """Apply retention now and then every ``every`` seconds until ``stopping`` is set. A
    failed round (the database away, a conflict with a concurrent writer) is logged and
    tried again in the next one: everything it did not commit stays as it was."""
    while not stopping.is_set():
        try:
            report = await apply_retention(engine, settings, utcnow())
        except Exception:
            log.warning("retention: this round failed; trying again later", exc_info=True)
        else:
            if report.deleted or report.kept_active:
                log.info("%s", describe(report))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), every)


# ---------------------------------------------------------------- one resident


def _of_resident(resident: Resident) -> ColumnElement[bool]:
    c = CONVERSATION.c
    tests: list[ColumnElement[bool]] = []
    for address in resident.addresses:
        tests += [
            c.thread_key == address,
            # An email thread of the address: ``email:a@b.fi#<root>``.
            c.thread_key.startswith(f"{address}#", autoescape=True),
            c.address == address,
        ]
    if resident.contact is not None:
        tests.append(c.contact == resident.contact)
    return or_(*tests)


async def _resident_conversations(conn: AsyncConnection, resident: Resident) -> list[str]:
    c = CONVERSATION.c
    rows = await conn.execute(
        select(c.id).where(_of_resident(resident)).order_by(c.created_at, c.id)
    )
    return list(rows.scalars())


def _dead_letters_of(resident: Resident, conversations: Collection[str]) -> ColumnElement[bool]:
    """Dead letters whose raw event names the resident's address or conversation."""
    p = DEAD_LETTER.c.payload
    needles = [json.dumps(a) for a in sorted(resident.addresses)]
    needles += [f'"conversation_id":{json.dumps(cid)}' for cid in conversations]
    return or_(*(p.contains(n, autoescape=True) for n in needles))


async def delete_resident(
    engine: AsyncEngine, address: Address, *, dry_run: bool = False
) -> ResidentDeletion:
    """Erase everything stored about the resident at ``address`` (and the same contact on
    other channels), in one transaction; their opt-outs stay. A dry run rolls back."""
    resident = resident_of(address)
    async with engine.connect() as conn, _transaction(conn, commit=not dry_run):
        ids = await _resident_conversations(conn, resident)
        await _lock(conn, ids)
        t = TICKET.c
        active = list(
            (
                await conn.execute(
                    select(t.case_number)
                    .where(t.conversation_id.in_(ids), t.status.in_(ACTIVE))
                    .order_by(t.id)
                )
            ).scalars()
        )
        dead = _dead_letters_of(resident, ids)
        deleted, _ = await _purge(conn, ids)
        deleted[DEAD_LETTER.name] += await _count(conn, delete(DEAD_LETTER).where(dead))
        o = OPT_OUT.c
        mine = o.address.in_(sorted(resident.addresses))
        deleted[OPT_OUT.name] += await _count(
            conn, delete(OPT_OUT).where(mine, o.opted_out.is_(False))
        )
        opt_outs_kept = int(
            (
                await conn.execute(select(func.count()).where(mine, o.opted_out.is_(True)))
            ).scalar_one()
        )
    return ResidentDeletion(
        deleted=_nonzero(deleted),
        opt_outs_kept=opt_outs_kept,
        active_cases=[n for n in active if n],
        needles=(*sorted(resident.addresses), *sorted(ids)),
    )


# What an export shows of each row (Art. 15; see the module's docstring). Left out: ids
# that lead into provider logs, staff usernames, the agent's internal ranking and costs.
_CONVERSATION_FIELDS = ("id", "channel", "address", "contact", "language", "created_at",
                        "updated_at")  # fmt: skip
_MESSAGE_FIELDS = ("id", "role", "channel", "text", "full_text", "attachments", "sources",
                   "created_at", "status", "delivery_error")  # fmt: skip
_TICKET_FIELDS = ("case_number", "queue", "status", "reason", "urgent", "language", "ai_draft",
                  "created_at", "updated_at", "first_response_at", "resolved_at")  # fmt: skip
_EVENT_FIELDS = ("kind", "actor", "from_status", "to_status", "from_queue", "to_queue", "note",
                 "created_at")  # fmt: skip
_DECISION_FIELDS = ("message_id", "created_at", "action", "reason", "clarify", "queue",
                    "urgent", "language", "reply_language", "department", "confidence",
                    "threshold", "personal_case", "wants_human", "failure", "draft", "sources",
                    "agent", "agent_reason", "llm_model")  # fmt: skip


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _pick(row: Any, fields: Iterable[str]) -> dict[str, Any]:
    return {f: _plain(getattr(row, f)) for f in fields}


def _staff(actor: str) -> str:
    """A timeline actor as the resident is shown it: themselves, or staff (unnamed)."""
    return actor if actor == "resident" else "staff"


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


async def _all(conn: AsyncConnection, statement: Any) -> list[Any]:
    return list((await conn.execute(statement)).all())


async def export_resident(engine: AsyncEngine, address: Address) -> dict[str, Any]:
    """Everything stored about the resident at ``address`` (and the same contact on other
    channels), JSON-ready, for a request of access (Art. 15; see the module's docstring
    for what is in it and why)."""
    resident = resident_of(address)
    c, m, d, t, e = CONVERSATION.c, MESSAGE.c, DECISION.c, TICKET.c, TICKET_EVENT.c
    async with engine.connect() as conn:
        ids = await _resident_conversations(conn, resident)
        conversations = await _all(
            conn, select(CONVERSATION).where(c.id.in_(ids)).order_by(c.created_at, c.id)
        )
        messages = await _all(
            conn, select(MESSAGE).where(m.conversation_id.in_(ids)).order_by(m.created_at, m.id)
        )
        decisions = await _all(
            conn,
            select(DECISION)
            .where(d.message_id.in_(select(m.id).where(m.conversation_id.in_(ids))))
            .order_by(d.created_at),
        )
        tickets = await _all(
            conn, select(TICKET).where(t.conversation_id.in_(ids)).order_by(t.created_at, t.id)
        )
        events = await _all(
            conn,
            select(TICKET_EVENT)
            .where(e.ticket_id.in_([r.id for r in tickets]))
            .order_by(e.created_at, e.id),
        )
        opt_outs = await _all(
            conn,
            select(OPT_OUT)
            .where(OPT_OUT.c.address.in_(sorted(resident.addresses)))
            .order_by(OPT_OUT.c.address),
        )
        threads = {k for r in conversations for k in _email_threads(r.thread_key, r.thread)}
        states = await _all(
            conn, select(STATE).where(STATE.c.key.in_(threads)).order_by(STATE.c.key)
        )
        dead = await _all(
            conn,
            select(DEAD_LETTER)
            .where(_dead_letters_of(resident, ids))
            .order_by(DEAD_LETTER.c.created_at),
        )

    parts: dict[str, dict[str, list[dict[str, Any]]]] = {
        r.id: {"messages": [], "tickets": [], "decisions": []} for r in conversations
    }
    for r in messages:
        parts[r.conversation_id]["messages"].append(_pick(r, _MESSAGE_FIELDS))
    for r in decisions:
        if r.conversation_id in parts:
            parts[r.conversation_id]["decisions"].append(_pick(r, _DECISION_FIELDS))
    timeline: dict[int, list[dict[str, Any]]] = {}
    for r in events:
        entry = _pick(r, _EVENT_FIELDS) | {"actor": _staff(r.actor)}
        timeline.setdefault(r.ticket_id, []).append(entry)
    for r in tickets:
        ticket = _pick(r, _TICKET_FIELDS) | {"timeline": timeline.get(r.id, [])}
        parts[r.conversation_id]["tickets"].append(ticket)
    return {
        "address": str(resident.address),
        "contact": resident.contact,
        "exported_at": utcnow().isoformat(),
        "conversations": [
            {"started_from": r.thread_key.partition("#")[0]}
            | _pick(r, _CONVERSATION_FIELDS)
            | parts[r.id]
            for r in conversations
        ],
        "opt_outs": [_pick(r, ("address", "opted_out", "updated_at")) for r in opt_outs],
        "email_threads": [
            {
                "thread": r.key.removeprefix(EMAIL_THREAD),
                "subject": (r.value or {}).get("subject"),
                "updated_at": _plain(r.updated_at),
            }
            for r in states
        ],
        "dead_letters": [
            {"subject": r.subject, "created_at": _plain(r.created_at), "payload": _json(r.payload)}
            for r in dead
        ],
    }
