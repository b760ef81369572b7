"""Retention on a real database (SQLite file and PostgreSQL): old conversations go with
everything that hangs off them, young ones and active cases stay, the admin figures stay
without personal data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.admin.insights import Facts
from handoff.analytics import ANALYTICS_DAYS, resolution, volume
from handoff.retention import (
    REMOVED,
    RetentionReport,
    apply_retention,
    delete_resident,
    export_resident,
    run_retention,
)
from handoff.thresholds import Thresholds
from handoff.whatif import simulate
from router.app import initial_policy
from router.db import create_engine, create_schema
from router.events import Address, Channel, MessageReceived, ReplyRequested, new_id, utcnow
from router.settings import Settings
from router.subjects import ALL_REPLIES_REQUESTED
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
)
from tests.integration.harness import (
    answering,
    collect,
    eventually,
    make_settings,
    services,
    worker,
)

T: dict[str, Any] = {
    "conversation": ConversationRow.__table__,  # type: ignore[attr-defined]
    "message": MessageRow.__table__,  # type: ignore[attr-defined]
    "decision": DecisionRow.__table__,  # type: ignore[attr-defined]
    "ticket": TicketRow.__table__,  # type: ignore[attr-defined]
    "ticket_event": TicketEventRow.__table__,  # type: ignore[attr-defined]
    "ai_label": AiLabelRow.__table__,  # type: ignore[attr-defined]
    "ai_label_change": AiLabelChangeRow.__table__,  # type: ignore[attr-defined]
    "opt_out": OptOutRow.__table__,  # type: ignore[attr-defined]
    "channel_state": ChannelStateRow.__table__,  # type: ignore[attr-defined]
    "dead_letter": DeadLetterRow.__table__,  # type: ignore[attr-defined]
}
LIB = {"doc_id": "lib", "title": "Kirjastopalvelut", "url": "https://kunta.example/kirjasto"}
# What only the resident wrote: none of it may be left after their conversation went.
SECRET = "henkilötunnukseni on 010190-123A"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    e = create_engine(database_url)
    await create_schema(e)
    try:
        yield e
    finally:
        await e.dispose()


def limits(web: int = 90, contact: int = 365) -> Settings:
    return Settings.model_validate({"retention_web_days": web, "retention_contact_days": contact})


@dataclass
class Made:
    conversation: str
    messages: list[str]
    ticket: int | None = None
    case_number: str | None = None


class World:
    """Rows as the router and the console write them, at chosen ages."""

    def __init__(self, engine: AsyncEngine, now: datetime) -> None:
        self.engine = engine
        self.now = now

    async def conversation(
        self,
        thread_key: str,
        days: float,
        *,
        ticket: str | None = None,
        contact: str | None = None,
        thread: str | None = None,
        words: str = SECRET,
    ) -> Made:
        """A conversation last active ``days`` ago: a resident's question, the decision on
        it and the AI's reply; with ``ticket`` (a status) a handoff ticket with an internal
        note and a label instead of the reply."""
        at = self.now - timedelta(days=days)
        cid, asked, replied = new_id(), new_id(), new_id()
        channel = thread_key.partition(":")[0]
        address = thread_key.partition("#")[0]
        async with self.engine.begin() as conn:
            await conn.execute(
                T["conversation"]
                .insert()
                .values(
                    id=cid,
                    thread_key=thread_key,
                    channel=channel,
                    address=address,
                    thread=thread,
                    contact=contact,
                    language="fi",
                    owner="human" if ticket else "ai",
                    ai_turns=1,
                    clarifications=0,
                    disclosed=True,
                    created_at=at - timedelta(minutes=5),
                    updated_at=at,
                )
            )
            for row in (
                {
                    "id": asked,
                    "conversation_id": cid,
                    "dedup_key": f"{channel}:{asked}",
                    "role": "resident",
                    "channel": channel,
                    "text": f"Kirjasto? Muuten {words}",
                    "full_text": f"Kirjasto? Muuten {words}\n--\nMaija",
                    "attachments": [{"filename": "passi.jpg", "size": 3}],
                    "sources": [],
                    "status": "received",
                    "created_at": at - timedelta(minutes=1),
                },
                {
                    "id": replied,
                    "conversation_id": cid,
                    "role": "agent" if ticket else "ai",
                    "channel": channel,
                    "text": f"Hei, {words} on kirjattu",
                    "sources": [LIB],
                    "status": "delivered",
                    "in_reply_to": asked,
                    "author": "anna" if ticket else "offline",
                    "provider_message_id": f"SM{replied}",
                    "created_at": at,
                },
            ):
                await conn.execute(T["message"].insert().values(row))
            ticket_id: int | None = None
            case = f"NV-{cid[:8].upper()}" if ticket else None
            if ticket:
                ticket_id = int(
                    (
                        await conn.execute(
                            T["ticket"]
                            .insert()
                            .values(
                                case_number=case,
                                conversation_id=cid,
                                queue="culture-leisure",
                                status=ticket,
                                reason="asked_for_human",
                                language="fi",
                                ai_draft=f"Luonnos: {words}",
                                sources=[LIB],
                                created_at=at - timedelta(minutes=1),
                                updated_at=at,
                                first_response_at=at,
                                resolved_at=at if ticket == "resolved" else None,
                                owner="anna",
                            )
                            .returning(T["ticket"].c.id)
                        )
                    ).scalar_one()
                )
                await conn.execute(
                    T["ticket_event"].insert(),
                    [
                        {
                            "ticket_id": ticket_id,
                            "kind": "note",
                            "actor": "anna",
                            "note": f"Soitti, {words}",
                            "created_at": at,
                        }
                    ],
                )
                label = {
                    "ticket_id": ticket_id,
                    "department_correct": True,
                    "answer_correct": False,
                    "labelled_by": "anna",
                    "labelled_at": at,
                }
                await conn.execute(T["ai_label"].insert().values(label))
                await conn.execute(T["ai_label_change"].insert().values(label))
            await conn.execute(
                T["decision"]
                .insert()
                .values(
                    message_id=asked,
                    conversation_id=cid,
                    action="handoff" if ticket else "answer",
                    reason="asked_for_human" if ticket else None,
                    queue="culture-leisure",
                    threshold=0.5,
                    policy_version=0,
                    agent="scripted",
                    language="fi",
                    department="P25",
                    confidence=0.9,
                    wants_human=bool(ticket),
                    draft=f"Kirjasto on auki. ({words})",
                    sources=[LIB],
                    ranked_doc_ids=["lib"],
                    agent_reason=f"Asukas kertoi: {words}",
                    ticket_id=ticket_id,
                    created_at=at - timedelta(minutes=1),
                )
            )
        return Made(cid, [asked, replied], ticket_id, case)

    async def state(self, key: str, days: float, value: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                T["channel_state"]
                .insert()
                .values(key=key, value=value, updated_at=self.now - timedelta(days=days))
            )

    async def opt_out(self, address: str, opted_out: bool, days: float) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                T["opt_out"]
                .insert()
                .values(
                    address=address,
                    opted_out=opted_out,
                    provider_message_id="SMstop",
                    updated_at=self.now - timedelta(days=days),
                )
            )

    async def dead_letter(self, days: float, payload: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                T["dead_letter"]
                .insert()
                .values(
                    stream="NEUVONTA_CONVERSATIONS",
                    stream_seq=int(days * 1000),
                    subject="neuvonta.conversations.message.received.sms",
                    error="unreadable",
                    deliveries=5,
                    payload=payload,
                    created_at=self.now - timedelta(days=days),
                )
            )


async def counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            name: int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
            for name, t in T.items()
        }


async def all_rows(engine: AsyncEngine, table: str, **where: Any) -> list[dict[str, Any]]:
    t = T[table]
    q = select(t)
    for column, value in where.items():
        q = q.where(t.c[column] == value)
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(q)]


async def foreign_keys_hold(engine: AsyncEngine) -> None:
    """Every reference points at a row (PostgreSQL enforces it; SQLite checks on request)."""
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert (await conn.execute(text("PRAGMA foreign_key_check"))).all() == []
        dangling = (
            select(func.count())
            .select_from(T["decision"])
            .where(T["decision"].c.message_id.not_in(select(T["message"].c.id)))
        )
        assert (await conn.execute(dangling)).scalar_one() == 0


async def any_text_contains(engine: AsyncEngine, words: str) -> list[str]:
    """Where ``words`` still are, as ``table.column``."""
    found = []
    async with engine.connect() as conn:
        for name, t in T.items():
            for column in t.columns:
                if column.type.python_type is not str:
                    continue
                q = select(func.count()).select_from(t).where(column.contains(words))
                if (await conn.execute(q)).scalar_one():
                    found.append(f"{name}.{column.name}")
    return found


async def test_old_chats_go_young_ones_and_active_cases_stay(engine: AsyncEngine) -> None:
    now = utcnow()
    world = World(engine, now)
    old_web = await world.conversation("web:old-session", 100)
    young_web = await world.conversation("web:young-session", 10, words="nuori")
    # Past the web limit, not the contact limit: an SMS conversation is kept longer.
    young_sms = await world.conversation("sms:+358401111111", 100, words="tekstari")
    busy = await world.conversation(
        "sms:+358402222222", 400, ticket="claimed", contact="tel:+358402222222", words="kesken"
    )
    old_case = await world.conversation(
        "sms:+358403333333", 200, ticket="resolved", contact="tel:+358403333333"
    )
    before = await counts(engine)

    report = await apply_retention(engine, limits(web=90, contact=180), now)

    assert report.conversations == {"web": 1, "contact": 1}
    assert report.kept_active == 1
    assert report.deleted == {
        "ai_label": 1,
        "ai_label_change": 1,
        "conversation": 2,
        "message": 4,
        "ticket": 1,
        "ticket_event": 1,
    }
    # Each deleted conversation's decision stays for the figures, on an empty stand-in.
    assert report.anonymised == {"conversation": 2, "decision": 2, "message": 2}
    after = await counts(engine)
    assert after["conversation"] == before["conversation"] - 2 + 2
    assert after["message"] == before["message"] - 4 + 2
    assert after["decision"] == before["decision"]
    assert after["ticket"] == before["ticket"] - 1
    kept_ids = {r["id"] for r in await all_rows(engine, "conversation")}
    assert {young_web.conversation, young_sms.conversation, busy.conversation} <= kept_ids
    assert old_web.conversation not in kept_ids
    assert old_case.conversation not in kept_ids
    # The case a person is working on is whole: its note, label and transcript.
    assert len(await all_rows(engine, "message", conversation_id=busy.conversation)) == 2
    assert len(await all_rows(engine, "ticket_event", ticket_id=busy.ticket)) == 1
    assert len(await all_rows(engine, "ai_label", ticket_id=busy.ticket)) == 1
    # Nothing the residents of the deleted conversations wrote or were told is left.
    assert await any_text_contains(engine, SECRET) == []
    await foreign_keys_hold(engine)

    stand_ins = [
        r for r in await all_rows(engine, "conversation") if r["thread_key"].startswith("retained:")
    ]
    assert sorted(r["channel"] for r in stand_ins) == ["sms", "web"]
    for r in stand_ins:
        assert r["contact"] is None and r["thread"] is None
        assert r["address"] == r["thread_key"] == f"retained:{r['id']}"
    kept = [
        d
        for d in await all_rows(engine, "decision")
        if d["conversation_id"] in {r["id"] for r in stand_ins}
    ]
    assert len(kept) == 2
    for d in kept:
        assert d["message_id"] not in old_web.messages + old_case.messages
        assert d["draft"] == REMOVED and d["agent_reason"] is None and d["ticket_id"] is None
        assert d["sources"] == [LIB] and d["confidence"] == 0.9 and d["queue"] == "culture-leisure"
        (stand_in,) = await all_rows(engine, "message", id=d["message_id"])
        assert stand_in["text"] == "" and stand_in["dedup_key"] is None
        assert stand_in["full_text"] is None and stand_in["attachments"] is None

    # A second run finds nothing more.
    again = await apply_retention(engine, limits(web=90, contact=180), now)
    assert again.deleted == {} and again.anonymised == {}
    assert again.kept_active == 1


async def test_a_dry_run_says_exactly_what_a_run_deletes_and_changes_nothing(
    engine: AsyncEngine,
) -> None:
    now = utcnow()
    world = World(engine, now)
    await world.conversation("web:a", 100)
    await world.conversation("telegram:42", 500, ticket="resolved")
    await world.conversation("web:b", 1)
    await world.opt_out("sms:+358404444444", False, 400)
    before = await counts(engine)

    planned = await apply_retention(engine, limits(), now, dry_run=True)
    assert planned.dry_run
    assert await counts(engine) == before

    done = await apply_retention(engine, limits(), now)
    assert planned == RetentionReport(
        dry_run=True,
        conversations=done.conversations,
        kept_active=done.kept_active,
        deleted=done.deleted,
        anonymised=done.anonymised,
    )
    assert done.deleted["conversation"] == 2 and done.deleted["opt_out"] == 1


async def test_zero_days_keeps_everything_of_that_kind(engine: AsyncEngine) -> None:
    now = utcnow()
    world = World(engine, now)
    await world.conversation("web:a", 5000)
    await world.conversation("email:a@b.fi#root1", 5000, contact="email:a@b.fi")
    report = await apply_retention(engine, limits(web=0, contact=0), now)
    assert report.deleted == {}
    report = await apply_retention(engine, limits(web=0, contact=30), now)
    assert report.conversations == {"contact": 1}


async def test_large_volumes_go_in_batches_past_the_ones_that_stay(engine: AsyncEngine) -> None:
    now = utcnow()
    world = World(engine, now)
    for i in range(12):
        await world.conversation(f"web:old-{i}", 100 + i)
        if i % 3 == 0:
            # Old, but a case is open: met in every batch, never removed, never in the way.
            await world.conversation(f"sms:+35840555{i:04d}", 900, ticket="open")
        await world.conversation(f"web:young-{i}", 3)
    report = await apply_retention(engine, limits(), now, batch=5)
    assert report.conversations == {"web": 12}
    assert report.kept_active == 4
    assert report.deleted["message"] == 24
    left = [r["thread_key"] for r in await all_rows(engine, "conversation")]
    assert not [k for k in left if k.startswith("web:old")]
    assert len([k for k in left if k.startswith("web:young")]) == 12
    await foreign_keys_hold(engine)


async def test_email_threads_opt_outs_and_dead_letters_age_too(engine: AsyncEngine) -> None:
    now = utcnow()
    world = World(engine, now)
    # An old email conversation: its thread headers (with the subject) go with it.
    await world.conversation(
        "email:maija@example.fi#root-a", 400, contact="email:maija@example.fi", thread="root-b"
    )
    await world.state("email:thread:root-a", 400, {"subject": "Kirjasto"})
    await world.state("email:thread:root-b", 390, {"subject": "Re: Kirjasto"})
    # An old thread of a case still open stays; an old orphan goes; a young one stays.
    await world.conversation(
        "email:pekka@example.fi#root-c",
        400,
        ticket="waiting",
        contact="email:pekka@example.fi",
        thread="root-c",
    )
    await world.state("email:thread:root-c", 400, {"subject": "Auttakaa"})
    await world.state("email:thread:orphan", 400, {"subject": "Vanha"})
    await world.state("email:thread:fresh", 2, {"subject": "Uusi"})
    await world.state("telegram:offset", 400, {"offset": 7})
    # Opt-outs: a STOP stays however old; a START (no longer opted out) goes when old.
    await world.opt_out("sms:+358406666666", True, 1000)
    await world.opt_out("sms:+358407777777", False, 1000)
    await world.opt_out("sms:+358408888888", False, 3)
    await world.dead_letter(400, '{"text": "vanha"}')
    await world.dead_letter(10, '{"text": "uusi"}')

    report = await apply_retention(engine, limits(), now)

    assert report.deleted["channel_state"] == 3
    keys = sorted(r["key"] for r in await all_rows(engine, "channel_state"))
    assert keys == ["email:thread:fresh", "email:thread:root-c", "telegram:offset"]
    opt_outs = {r["address"]: r["opted_out"] for r in await all_rows(engine, "opt_out")}
    assert opt_outs == {"sms:+358406666666": True, "sms:+358408888888": False}
    assert [r["payload"] for r in await all_rows(engine, "dead_letter")] == ['{"text": "uusi"}']


async def test_the_stand_ins_go_once_no_figure_can_show_them(engine: AsyncEngine) -> None:
    now = utcnow()
    world = World(engine, now)
    await world.conversation("web:a", 100)
    first = await apply_retention(engine, limits(), now)
    assert first.anonymised["decision"] == 1
    assert (await counts(engine))["decision"] == 1

    later = await apply_retention(engine, limits(), now + timedelta(days=ANALYTICS_DAYS))
    assert later.conversations == {"statistics": 1}
    assert later.deleted == {"conversation": 1, "decision": 1, "message": 1}
    assert later.anonymised == {}
    assert await counts(engine) == dict.fromkeys(T, 0)


async def test_a_chat_past_the_figures_horizon_keeps_nothing(engine: AsyncEngine) -> None:
    now = utcnow()
    await World(engine, now).conversation("web:a", ANALYTICS_DAYS + 10)
    report = await apply_retention(engine, limits(), now)
    assert report.anonymised == {}
    assert report.deleted["decision"] == 1
    assert await counts(engine) == dict.fromkeys(T, 0)


async def test_the_loop_runs_until_stopped(engine: AsyncEngine) -> None:
    now = utcnow()
    await World(engine, now).conversation("web:a", 100)
    stopping = asyncio.Event()
    task = asyncio.create_task(run_retention(engine, limits(), stopping, every=0.05))

    async def gone() -> bool:
        return not [r for r in await all_rows(engine, "conversation") if r["thread_key"] == "web:a"]

    await eventually(gone, what="the old chat gone")
    stopping.set()
    await asyncio.wait_for(task, 5)


async def test_a_failing_round_is_logged_and_the_loop_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database that is not there: every round fails, none crashes the loop.
    broken = create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    stopping = asyncio.Event()
    task = asyncio.create_task(run_retention(broken, limits(), stopping, every=0.05))
    await eventually(
        lambda: _async(sum("retention: this round failed" in m for m in caplog.messages) >= 2),
        what="two failed rounds logged",
    )
    stopping.set()
    await asyncio.wait_for(task, 5)
    await broken.dispose()


async def _async(value: bool) -> bool:
    return value


async def test_figures_and_the_whatif_stay_the_same_after_the_chats_go(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    """Real conversations through the real router; three months later the chats are gone
    and the admin figures of the period are what they were."""
    settings = make_settings(tmp_path, nats_url, database_url)
    async with services(settings) as svc:
        async with worker(svc, answering()):
            for i, words in enumerate(["Kirjasto?", f"Kirjasto, {SECRET}?", "Haluan ihmisen"]):
                await svc.publisher.publish(
                    MessageReceived(
                        channel=Channel.WEB,
                        provider_message_id=f"m{i}",
                        sender=Address(channel=Channel.WEB, value=f"session-{i % 2}"),
                        text=words,
                    )
                )

            async def decided() -> bool:
                async with svc.engine.connect() as conn:
                    q = select(func.count()).select_from(T["decision"])
                    return int((await conn.execute(q)).scalar_one()) == 3

            await eventually(decided, what="three decisions")
        # The person resolves the case; then 100 days pass.
        async with svc.engine.begin() as conn:
            await conn.execute(update(T["ticket"]).values(status="resolved", resolved_at=utcnow()))
        later = utcnow() + timedelta(days=100)
        since = later - timedelta(days=ANALYTICS_DAYS)
        facts = Facts(svc.engine)
        policy = initial_policy(settings, svc.queues)
        before = await facts.messages(since)
        samples_before = await facts.samples(since, policy)
        assert any(SECRET in f.text for f in before)

        report = await apply_retention(svc.engine, settings, later)

        assert report.conversations == {"web": 2}
        after = await facts.messages(since)
        assert volume(after) == volume(before)
        assert resolution(after) == resolution(before)
        assert all(f.text == "" for f in after)
        samples_after = await facts.samples(since, policy)
        assert sorted(map(repr, samples_after)) == sorted(map(repr, samples_before))
        candidate = Thresholds(default=0.95)
        assert simulate(samples_after, candidate, days=30) == simulate(
            samples_before, candidate, days=30
        )
        assert await any_text_contains(svc.engine, SECRET) == []
        await foreign_keys_hold(svc.engine)


async def test_an_erasure_request_takes_threads_dead_letters_and_a_start_but_keeps_a_stop(
    engine: AsyncEngine,
) -> None:
    now = utcnow()
    world = World(engine, now)
    maija = "email:maija@example.fi"
    mine = await world.conversation(f"{maija}#root-a", 1, contact=maija, thread="root-b")
    await world.state("email:thread:root-a", 1, {"subject": "Kirjasto"})
    await world.state("email:thread:root-b", 1, {"subject": "Re: Kirjasto"})
    await world.conversation("email:pekka@example.fi#root-p", 1, words="Pekan asia")
    await world.state("email:thread:root-p", 1, {"subject": "Pekan asia"})
    await world.opt_out(maija, True, 1)
    await world.opt_out("sms:+358401234567", False, 1)
    phone = await world.conversation("sms:+358401234567", 1, contact="tel:+358401234567")
    await world.dead_letter(1, f'{{"sender":"{maija}","text":"hukassa"}}')
    await world.dead_letter(2, f'{{"conversation_id":"{phone.conversation}"}}')
    await world.dead_letter(3, '{"sender":"email:maija@example.fi.evil","text":"muu"}')

    exported = await export_resident(engine, Address.parse("email:Maija@Example.fi"))
    assert [c["id"] for c in exported["conversations"]] == [mine.conversation]
    assert sorted(t["subject"] for t in exported["email_threads"]) == ["Kirjasto", "Re: Kirjasto"]
    assert [d["payload"]["text"] for d in exported["dead_letters"]] == ["hukassa"]
    message = exported["conversations"][0]["messages"][0]
    assert message["full_text"].endswith("--\nMaija")
    assert message["attachments"] == [{"filename": "passi.jpg", "size": 3}]

    planned = await delete_resident(engine, Address.parse(maija), dry_run=True)
    done = await delete_resident(engine, Address.parse(maija))
    assert planned == done
    assert done.deleted == {
        "channel_state": 2,
        "conversation": 1,
        "dead_letter": 1,
        "decision": 1,
        "message": 2,
    }
    assert done.opt_outs_kept == 1 and done.active_cases == []
    assert [r["key"] for r in await all_rows(engine, "channel_state")] == ["email:thread:root-p"]
    assert {r["address"] for r in await all_rows(engine, "opt_out")} == {
        maija,
        "sms:+358401234567",
    }
    # The phone resident: the START row (no longer an opt-out) and their dead letter go.
    gone = await delete_resident(engine, Address.parse("whatsapp:+358401234567"))
    assert gone.deleted["opt_out"] == 1 and gone.deleted["dead_letter"] == 1
    assert gone.opt_outs_kept == 0
    assert [r["address"] for r in await all_rows(engine, "opt_out")] == [maija]
    assert [r["payload"] for r in await all_rows(engine, "dead_letter")] == [
        '{"sender":"email:maija@example.fi.evil","text":"muu"}'
    ]
    assert await any_text_contains(engine, SECRET) == []
    assert len(await all_rows(engine, "conversation")) == 1
    await foreign_keys_hold(engine)


async def test_retention_beside_a_busy_router_loses_and_doubles_nothing(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    """Retention deleting the very conversations the router is writing to (its clock set
    far ahead, so that everything looks old): each message still gets exactly one reply."""
    settings = make_settings(tmp_path, nats_url, database_url)
    numbers = [f"+35840700{i:04d}" for i in range(10)]
    sent = [(n, k) for k in range(3) for n in numbers]
    async with services(settings) as svc:
        replies = await collect(svc, ALL_REPLIES_REQUESTED, ReplyRequested)
        stopping = asyncio.Event()

        async def delete_everything() -> int:
            rounds = 0
            while not stopping.is_set():
                future = utcnow() + timedelta(days=1000)
                try:
                    await apply_retention(svc.engine, limits(), future, batch=4)
                except Exception:  # a conflict with the router: the next round goes on
                    await asyncio.sleep(0.01)
                rounds += 1
            return rounds

        retention = asyncio.create_task(delete_everything())
        async with worker(svc, answering()):
            for i, (n, k) in enumerate(sent):
                await svc.publisher.publish(
                    MessageReceived(
                        channel=Channel.SMS,
                        provider_message_id=f"new-{i}",
                        sender=Address(channel=Channel.SMS, value=n),
                        text=f"Kirjasto taas? ({k})",
                    )
                )

            async def all_answered() -> bool:
                return len(replies) >= len(sent)

            await eventually(all_answered, timeout=60, what="a reply to every message")
            await asyncio.sleep(0.5)  # time for a doubled reply to show
        stopping.set()
        assert await asyncio.wait_for(retention, 10) > 1
        answered = [r.in_reply_to for r in replies]
        assert len(answered) == len(set(answered)) == len(sent)
        await foreign_keys_hold(svc.engine)
