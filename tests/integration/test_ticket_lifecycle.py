"""The ticket lifecycle through the console API (the real web app in-process over httpx's
ASGI transport) and through the real router, on a real nats-server and real databases."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from nats.aio.msg import Msg

from handoff.auth import hash_password
from handoff.console.api import FORBIDDEN, NOT_YOUR_QUEUE
from handoff.tickets import TICKET, TicketService
from router.app import RouterWorker, Services, initial_policy
from router.events import Address, Channel, MessageReceived, ReplyRequested, utcnow
from router.subjects import reply_requested
from router.web import create_web_app, staff_store
from tests.integration.harness import (
    answering,
    collect,
    eventually,
    make_settings,
    rows,
    services,
    worker,
)
from tests.integration.staff_helpers import Console, add_ticket, client, sign_in

PASSWORDS = {"boss": "boss-password-1", "anna": "anna-password-1", "ville": "ville-password-1"}
HKI = ZoneInfo("Europe/Helsinki")
ACTIONS = ("claim", "reply", "note", "transfer", "resolve", "reopen")


@contextlib.asynccontextmanager
async def console(tmp_path: Path, nats_url: str, database_url: str) -> AsyncIterator[Console]:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        store = staff_store(svc)
        await store.add("boss", hash_password(PASSWORDS["boss"]), "admin")
        await store.add("anna", hash_password(PASSWORDS["anna"]), "agent", ["housing"])
        await store.add(
            "ville", hash_password(PASSWORDS["ville"]), "agent", ["housing", "building"]
        )
        tickets = {
            q: await add_ticket(svc, q, text=f"Kysymys jonoon {q}") for q in ("housing", "general")
        }
        yield Console(svc, create_web_app(svc), store, tickets)


@contextlib.asynccontextmanager
async def signed_in(con: Console, *names: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for i, name in enumerate(names):
            c = await stack.enter_async_context(client(con.app, address=f"192.0.2.{30 + i}"))
            await sign_in(c, name, PASSWORDS[name])
            clients.append(c)
        yield clients


async def act(c: httpx.AsyncClient, ticket: int, action: str, **body: Any) -> httpx.Response:
    payload: dict[str, Any] | None = None
    if action == "reply":
        payload = {"text": body.get("text", "Hei, tässä asiakaspalvelu.")}
    elif action == "note":
        payload = {"text": body.get("text", "Soitin asukkaalle.")}
    elif action == "transfer":
        payload = {
            "queue": body.get("queue", "building"),
            "note": body.get("note", "Kuuluu teille."),
        }
    return await c.post(f"/api/tickets/{ticket}/{action}", json=payload)


def kinds(detail: dict[str, Any]) -> list[tuple[str, str, str | None, str | None]]:
    return [(e["kind"], e["actor"], e["from_status"], e["to_status"]) for e in detail["timeline"]]


async def test_every_transition_is_recorded_and_invalid_ones_say_why(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with console(tmp_path, nats_url, database_url) as con, signed_in(con, "anna") as [anna]:
        ticket = con.tickets["housing"]
        listed = (await anna.get("/api/tickets")).json()
        assert [(t["id"], t["status"], t["owner"]) for t in listed] == [(ticket, "open", None)]

        r = await act(anna, ticket, "claim")
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["owner"]) == ("claimed", "anna")
        assert r.json()["claimed_at"] is not None
        r = await act(anna, ticket, "claim")
        assert r.status_code == 409
        assert r.json() == {"detail": "You have already claimed this ticket."}
        assert (await act(anna, ticket, "reopen")).json() == {
            "detail": "Only a resolved ticket can be reopened."
        }

        r = await act(anna, ticket, "reply", text="Hei! Tarkistan asian.")
        assert r.status_code == 202, r.text
        assert r.json()["queued"] is True
        detail = (await anna.get(f"/api/tickets/{ticket}")).json()
        assert detail["status"] == "waiting" and detail["owner"] == "anna"
        assert detail["first_response_at"] is not None
        assert detail["due_at"] is None and detail["overdue"] is False
        reply = detail["transcript"][-1]
        assert (reply["role"], reply["author"], reply["text"]) == (
            "agent",
            "anna",
            "Hei! Tarkistan asian.",
        )
        assert reply["status"] == "delivered"  # web chat: the published event is delivery
        assert detail["timeline"][-1]["message_id"] == r.json()["message_id"]

        assert (await act(anna, ticket, "note", text="Odottaa liitettä.")).status_code == 200
        r = await act(anna, ticket, "resolve")
        assert r.status_code == 200
        assert (r.json()["status"], r.json()["resolved_by"]) == ("resolved", "anna")
        for action, reason in (
            ("resolve", "The ticket is already resolved."),
            ("reply", "The ticket is resolved; reopen it first."),
            ("claim", "The ticket is resolved; reopen it first."),
        ):
            r = await act(anna, ticket, action)
            assert r.status_code == 409, action
            assert r.json() == {"detail": reason}
        # A note is fine on a resolved ticket: it is only for colleagues.
        assert (await act(anna, ticket, "note", text="Jälkikirjaus.")).status_code == 200

        r = await act(anna, ticket, "reopen")
        assert r.status_code == 200
        detail = r.json()
        assert (detail["status"], detail["owner"], detail["resolved_at"]) == ("open", "anna", None)
        assert kinds(detail) == [
            ("opened", "router", None, "open"),
            ("claim", "anna", "open", "claimed"),
            ("reply", "anna", "claimed", "waiting"),
            ("note", "anna", "waiting", "waiting"),
            ("resolve", "anna", "waiting", "resolved"),
            ("note", "anna", "resolved", "resolved"),
            ("reopen", "anna", "resolved", "open"),
        ]
        notes = [e["note"] for e in detail["timeline"] if e["kind"] == "note"]
        assert notes == ["Odottaa liitettä.", "Jälkikirjaus."]
        times = [e["at"] for e in detail["timeline"]]
        assert times == sorted(times)
        (conv,) = await rows(con.svc, "conversation", id=detail["conversation_id"])
        assert conv["owner"] == "human"  # reopened: a person owns the conversation again

        # Replying to an open ticket claims it on the way; an empty reply or note is refused.
        assert (await act(anna, ticket, "reply", text="  ")).status_code == 422
        assert (await act(anna, ticket, "note", text="")).status_code == 422
        assert (await act(anna, ticket, "reply")).status_code == 202
        detail = (await anna.get(f"/api/tickets/{ticket}")).json()
        assert kinds(detail)[-1] == ("reply", "anna", "open", "waiting")


async def test_an_agent_of_another_queue_gets_403_on_every_action(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with (
        console(tmp_path, nats_url, database_url) as con,
        signed_in(con, "anna", "boss") as [anna, boss],
        client(con.app) as nobody,
    ):
        general = con.tickets["general"]
        assert (await anna.get(f"/api/tickets/{general}")).status_code == 403
        for action in ACTIONS:
            r = await act(anna, general, action, queue="housing")
            assert r.status_code == 403, (action, r.text)
            assert r.json() == {"detail": FORBIDDEN}
            assert (await act(nobody, general, action)).status_code == 401, action
            # Signed in, but no CSRF token: refused before anything happens.
            no_csrf = await anna.post(
                f"/api/tickets/{con.tickets['housing']}/{action}",
                json={"text": "x", "queue": "building", "note": "x"},
                headers={"X-CSRF-Token": ""},
            )
            assert no_csrf.status_code == 403, action
        assert (await act(anna, 999_999, "claim")).status_code == 404
        assert (await anna.get("/api/tickets", params={"queue": "general"})).json() == []
        # Nothing changed: the admin sees both tickets untouched.
        for ticket in con.tickets.values():
            detail = (await boss.get(f"/api/tickets/{ticket}")).json()
            assert detail["status"] == "open" and detail["owner"] is None
            assert kinds(detail) == [("opened", "router", None, "open")]
            assert [m["role"] for m in detail["transcript"]] == ["resident"]


async def test_a_claimed_ticket_is_its_owners_until_an_admin_takes_it_over(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with (
        console(tmp_path, nats_url, sqlite_url) as con,
        signed_in(con, "anna", "ville", "boss") as [anna, ville, boss],
    ):
        ticket = con.tickets["housing"]
        assert (await act(ville, ticket, "claim")).status_code == 200
        r = await act(anna, ticket, "claim")
        assert r.status_code == 409
        assert r.json() == {"detail": "ville has claimed this ticket."}
        for action in ("reply", "resolve", "transfer"):
            r = await act(anna, ticket, action, queue="housing")
            assert r.status_code == 409, action
        r = await act(anna, ticket, "reply")
        assert r.json() == {"detail": "ville has claimed this ticket; only they can do that now."}
        # Colleagues may still leave a note.
        assert (await act(anna, ticket, "note", text="Asukas soitti myös.")).status_code == 200
        r = await act(boss, ticket, "claim")
        assert r.status_code == 200
        assert r.json()["owner"] == "boss"
        assert kinds(r.json())[-1] == ("claim", "boss", "claimed", "claimed")
        listed = (await boss.get("/api/tickets", params={"mine": "true"})).json()
        assert [t["id"] for t in listed] == [ticket]
        assert (await ville.get("/api/tickets", params={"mine": "true"})).json() == []


async def test_transfer_needs_a_queue_the_caller_may_use_and_a_note(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with (
        console(tmp_path, nats_url, database_url) as con,
        signed_in(con, "anna", "ville", "boss") as [anna, ville, boss],
    ):
        housing = con.tickets["housing"]
        # What the consoles' live view hears (core NATS, as the web processes get it).
        changes: list[dict[str, Any]] = []

        async def heard(msg: Msg) -> None:
            changes.append(json.loads(msg.data))

        await con.svc.broker.connection.subscribe("neuvonta.v1.handoff.changed.>", cb=heard)
        r = await act(anna, housing, "transfer", queue="general")
        assert r.status_code == 403
        assert r.json() == {"detail": NOT_YOUR_QUEUE.format(queue="general")}
        r = await act(anna, housing, "transfer", queue="no-such-queue")
        assert r.status_code == 422
        assert r.json() == {"detail": "There is no queue 'no-such-queue'."}
        r = await anna.post(f"/api/tickets/{housing}/transfer", json={"queue": "general"})
        assert r.status_code == 422  # no note
        r = await act(anna, housing, "transfer", queue="housing", note="   ")
        assert r.status_code == 422
        r = await act(ville, housing, "transfer", queue="housing")
        assert r.status_code == 409
        assert r.json() == {"detail": "The ticket is already in that queue."}

        # Ville works in building too: he may move it there; the claim does not travel.
        assert (await act(ville, housing, "claim")).status_code == 200
        r = await act(ville, housing, "transfer", queue="building", note="Rakennuslupa-asia.")
        assert r.status_code == 200, r.text
        detail = r.json()
        assert (detail["queue"], detail["status"], detail["owner"]) == ("building", "open", None)
        transfer = detail["timeline"][-1]
        assert transfer["kind"] == "transfer" and transfer["actor"] == "ville"
        assert (transfer["from_queue"], transfer["to_queue"]) == ("housing", "building")
        assert transfer["note"] == "Rakennuslupa-asia."
        assert detail["timeline"][0]["to_queue"] == "housing"  # where it was opened
        # Both queues' consoles hear of the move, the old one and the new one.
        expected = [
            {"ticket_id": housing, "queue": "housing", "change": "claim"},
            {"ticket_id": housing, "queue": "housing", "change": "transfer"},
            {"ticket_id": housing, "queue": "building", "change": "transfer"},
        ]

        async def all_heard() -> bool:
            return changes == expected

        await eventually(all_heard, what="the live ticket changes")
        # Anna no longer sees it; the admin may send it anywhere.
        assert (await anna.get(f"/api/tickets/{housing}")).status_code == 403
        r = await act(boss, housing, "transfer", queue="general", note="Yleiseen neuvontaan.")
        assert r.status_code == 200
        assert r.json()["queue"] == "general"
        listed = (await boss.get("/api/tickets", params={"queue": "general"})).json()
        assert {t["id"] for t in listed} == {housing, con.tickets["general"]}
        assert (await act(boss, housing, "resolve")).status_code == 200
        r = await act(boss, housing, "transfer", queue="housing", note="Takaisin.")
        assert r.status_code == 409
        assert r.json() == {"detail": "The ticket is resolved; reopen it first."}


async def test_internal_notes_never_reach_the_resident(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    secret = "SISÄINEN: asukkaalla on velkaa"
    async with (
        services(make_settings(tmp_path, nats_url, sqlite_url)) as svc,
        worker(svc, answering()),
    ):
        await staff_store(svc).add("boss", hash_password(PASSWORDS["boss"]), "admin")
        app = create_web_app(svc)
        replies = await collect(svc, reply_requested(Channel.WEB), ReplyRequested)
        async with client(app) as resident, client(app, address="192.0.2.40") as boss:
            await sign_in(boss, "boss", PASSWORDS["boss"])
            sid = (await resident.post("/api/chat/sessions", json={"language": "fi"})).json()[
                "session_id"
            ]
            r = await resident.post(
                f"/api/chat/sessions/{sid}/messages", json={"text": "Haluan puhua ihmisen kanssa"}
            )
            assert r.status_code == 202

            async def ticket_opened() -> bool:
                return bool((await boss.get("/api/tickets")).json())

            await eventually(ticket_opened, what="the ticket")
            (ticket,) = (await boss.get("/api/tickets")).json()
            assert (await act(boss, ticket["id"], "note", text=secret)).status_code == 200
            assert (
                await act(boss, ticket["id"], "reply", text="Hei, autan mielelläni.")
            ).status_code == 202

            async def reply_seen() -> bool:
                messages = (await resident.get(f"/api/chat/sessions/{sid}/messages")).json()
                return any(m["role"] == "agent" for m in messages)

            await eventually(reply_seen, what="the agent's reply in the chat")
            seen = (await resident.get(f"/api/chat/sessions/{sid}/messages")).text
            assert "Hei, autan mielelläni." in seen
            assert secret not in seen
            assert all(secret not in r.text for r in replies)
            assert len(replies) == 2  # the acknowledgement and the reply, nothing else
            stored = await rows(svc, "message")
            assert all(secret not in m["text"] for m in stored)
            detail = (await boss.get(f"/api/tickets/{ticket['id']}")).json()
            assert [e["note"] for e in detail["timeline"] if e["kind"] == "note"] == [secret]


def sms(text: str, provider_id: str) -> MessageReceived:
    return MessageReceived(
        channel=Channel.SMS,
        provider_message_id=provider_id,
        sender=Address(channel=Channel.SMS, value="+358401234567"),
        text=text,
    )


async def test_a_resident_message_reopens_a_waiting_ticket_through_the_router(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        tickets = TicketService(svc.engine, svc.publisher)
        async with worker(svc, answering()):
            await svc.publisher.publish(sms("Haluan puhua ihmisen kanssa", "SM-r1"))

            async def opened() -> bool:
                return bool(await tickets.list())

            await eventually(opened, what="a ticket")
            (summary,) = await tickets.list()
            await tickets.reply(summary.id, "Voitteko lähettää laskun numeron?", "anna")
            waiting = await tickets.get(summary.id)
            assert waiting.status == "waiting"
            # SMS: published to the gateway's queue; its receipts (issue 5) take it further.
            assert (waiting.transcript[-1].role, waiting.transcript[-1].status) == (
                "agent",
                "queued",
            )

            await svc.publisher.publish(sms("Numero on 12345.", "SM-r2"))

            async def reopened() -> bool:
                return (await tickets.get(summary.id)).status == "open"

            await eventually(reopened, what="the ticket open again")
            detail = await tickets.get(summary.id)
            assert detail.owner == "anna"  # the same person continues
            assert [(e.kind, e.actor, e.from_status, e.to_status) for e in detail.timeline] == [
                ("opened", "router", None, "open"),
                ("reply", "anna", "open", "waiting"),
                ("resident_message", "resident", "waiting", "open"),
            ]
            assert detail.transcript[-1].text == "Numero on 12345."
            # A claimed ticket stays claimed when the resident writes; nothing is reopened.
            await tickets.claim(summary.id, "anna")
            await svc.publisher.publish(sms("Vielä yksi asia.", "SM-r3"))

            async def held() -> bool:
                return len(await rows(svc, "decision")) == 3

            await eventually(held, what="the third decision")
            detail = await tickets.get(summary.id)
            assert detail.status == "claimed"
            assert [e.kind for e in detail.timeline][-1] == "claim"
        decisions = [d["action"] for d in await rows(svc, "decision")]
        assert sorted(decisions) == ["handoff", "hold", "hold"]
        assert len(await rows(svc, "ticket")) == 1


async def test_a_resident_message_soon_after_resolution_reopens_the_case(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        tickets = TicketService(svc.engine, svc.publisher)
        replies = await collect(svc, reply_requested(Channel.SMS), ReplyRequested)
        agent = answering()
        async with worker(svc, agent):
            await svc.publisher.publish(sms("Haluan puhua ihmisen kanssa", "SM-o1"))

            async def opened() -> bool:
                return bool(await tickets.list())

            await eventually(opened, what="a ticket")
            (summary,) = await tickets.list()
            await tickets.reply(summary.id, "Asia on hoidettu.", "anna")
            await tickets.resolve(summary.id, "anna")
            assert agent.calls == 1

            await svc.publisher.publish(sms("Ei se ole hoidettu, lasku tuli taas.", "SM-o2"))

            async def reopened() -> bool:
                return (await tickets.get(summary.id)).status == "open"

            await eventually(reopened, what="the case open again")
            await eventually(lambda: _true(len(replies) == 3), what="the reopening notice")
        assert agent.calls == 1  # the AI stayed out of it
        detail = await tickets.get(summary.id)
        assert (detail.resolved_at, detail.resolved_by) == (None, None)
        assert [(e.kind, e.from_status, e.to_status) for e in detail.timeline][-2:] == [
            ("resolve", "waiting", "resolved"),
            ("resident_message", "resolved", "open"),
        ]
        notice = replies[-1]
        assert f"Asiasi {summary.case_number} on avattu uudelleen" in notice.text
        assert len(await rows(svc, "ticket")) == 1
        (conv,) = await rows(svc, "conversation")
        assert conv["owner"] == "human"

        # Resolved long ago: a new message is a new question for the AI.
        await tickets.resolve(summary.id, "anna")
        async with svc.engine.begin() as conn:
            await conn.execute(TICKET.update().values(resolved_at=utcnow() - timedelta(days=4)))
        async with worker(svc, agent):
            await svc.publisher.publish(sms("Milloin kirjasto on auki?", "SM-o3"))
            await eventually(lambda: _true(len(replies) == 4), what="the AI answer")
        assert agent.calls == 2
        assert "Kirjasto on auki" in replies[-1].text
        assert (await tickets.get(summary.id)).status == "resolved"


async def _true(value: bool) -> bool:
    return value


async def test_overdue_tickets_are_flagged_filtered_and_counted(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with (
        console(tmp_path, nats_url, sqlite_url) as con,
        signed_in(con, "anna", "boss") as [anna, boss],
    ):
        old = await add_ticket(
            con.svc, "housing", text="Vuokrasopimus", created_at=utcnow() - timedelta(days=10)
        )
        urgent = await add_ticket(con.svc, "housing", text="Vesivuoto keittiössä", urgent=True)
        listed = {t["id"]: t for t in (await anna.get("/api/tickets")).json()}
        assert listed[old]["overdue"] is True
        assert listed[con.tickets["housing"]]["overdue"] is False
        assert (
            listed[con.tickets["housing"]]["due_at"] > listed[con.tickets["housing"]]["created_at"]
        )
        assert list(listed) == [urgent, old, con.tickets["housing"]]  # urgent first, then oldest
        only = (await anna.get("/api/tickets", params={"overdue": "true"})).json()
        assert [t["id"] for t in only] == [old]
        assert (await anna.get("/api/tickets/overdue")).json() == {
            "total": 1,
            "queues": {"housing": 1},
        }
        # Prometheus sees the same, every queue with a value (0 too).
        metrics = (await anna.get("/metrics")).text
        assert 'neuvonta_tickets_overdue{queue="housing"} 1.0' in metrics
        assert 'neuvonta_tickets_overdue{queue="general"} 0.0' in metrics
        old_general = await add_ticket(con.svc, "general", created_at=utcnow() - timedelta(days=10))
        assert 'neuvonta_tickets_overdue{queue="general"} 1.0' in (await anna.get("/metrics")).text
        assert (await anna.get("/api/tickets/overdue")).json()["total"] == 1
        assert (await boss.get("/api/tickets/overdue")).json() == {
            "total": 2,
            "queues": {"housing": 1, "general": 1},
        }
        assert {
            t["id"] for t in (await boss.get("/api/tickets", params={"overdue": "true"})).json()
        } == {old, old_general}

        # Filters: urgent, text (case-insensitive, in any message or the case number), status.
        r = await anna.get("/api/tickets", params={"urgent": "true"})
        assert [t["id"] for t in r.json()] == [urgent]
        r = await anna.get("/api/tickets", params={"q": "VESIVUOTO"})
        assert [t["id"] for t in r.json()] == [urgent]
        case = listed[old]["case_number"]
        r = await anna.get("/api/tickets", params={"q": case.lower()})
        assert [t["id"] for t in r.json()] == [old]
        assert (await anna.get("/api/tickets", params={"q": "100%_"})).json() == []

        # The first reply ends it; other states filter apart.
        assert (await act(anna, old, "reply")).status_code == 202
        assert (await anna.get("/api/tickets", params={"overdue": "true"})).json() == []
        assert (await anna.get("/api/tickets/overdue")).json()["total"] == 0
        assert (await act(anna, urgent, "claim")).status_code == 200
        by_status = {
            s: [t["id"] for t in (await anna.get("/api/tickets", params={"status": s})).json()]
            for s in ("open", "claimed", "waiting", "resolved", "active")
        }
        assert by_status == {
            "open": [con.tickets["housing"]],
            "claimed": [urgent],
            "waiting": [old],
            "resolved": [],
            "active": [urgent, old, con.tickets["housing"]],
        }
        assert (await anna.get("/api/tickets", params={"status": "nonsense"})).status_code == 422


async def test_overdue_follows_the_queues_hours_with_an_injected_clock(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    friday = datetime(2026, 12, 4, 15, 0, tzinfo=HKI)  # an hour before closing
    async with console(tmp_path, nats_url, sqlite_url) as con:
        ticket = await add_ticket(con.svc, "housing", created_at=friday)

        def at(moment: datetime) -> TicketService:
            return TicketService(con.svc.engine, con.svc.publisher, clock=lambda: moment)

        # 4 hours of open time: due on Monday at 11.00, not on Friday evening.
        detail = await at(datetime(2026, 12, 5, 12, tzinfo=HKI)).get(ticket)
        assert detail.due_at == datetime(2026, 12, 7, 11, tzinfo=HKI)
        assert not detail.overdue
        assert (await at(datetime(2026, 12, 7, 10, 59, tzinfo=HKI)).get(ticket)).overdue is False
        assert (await at(datetime(2026, 12, 7, 11, tzinfo=HKI)).get(ticket)).overdue is True
        # The per-queue count (console badge, /metrics) turns at the same moment.
        before = await at(datetime(2026, 12, 7, 10, 59, tzinfo=HKI)).overdue_counts()
        after = await at(datetime(2026, 12, 7, 11, tzinfo=HKI)).overdue_counts()
        assert after.get("housing", 0) - before.get("housing", 0) == 1


@contextlib.asynccontextmanager
async def router_at(svc: Services, now: Callable[[], datetime]) -> AsyncIterator[None]:
    run = RouterWorker(svc, answering(), initial_policy(svc.settings), clock=now)
    task = asyncio.create_task(run.run())
    await asyncio.wait_for(run.ready.wait(), 10)
    try:
        yield
    finally:
        run.stop()
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Tuesday 1 December 2026 at 10.00 Helsinki time: open, answer within 4 hours.
        (
            datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
            "Asianumerosi on {case}. Pyrimme vastaamaan viimeistään tänään klo 14.00.",
        ),
        # Saturday: closed until Monday 8.00, and the resident may leave details.
        (
            datetime(2026, 12, 5, 10, 0, tzinfo=UTC),
            "Asianumerosi on {case}. Palvelu on nyt suljettu, ja se avautuu maanantaina 7.12. "
            "klo 8.00. Voit jo nyt kirjoittaa tähän lisätietoja asiastasi",
        ),
    ],
)
async def test_the_resident_is_told_when_a_person_answers(
    tmp_path: Path, nats_url: str, sqlite_url: str, now: datetime, expected: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, sqlite_url)) as svc:
        replies = await collect(svc, reply_requested(Channel.SMS), ReplyRequested)
        async with router_at(svc, lambda: now):
            await svc.publisher.publish(sms("Haluan puhua ihmisen kanssa", "SM-ack"))

            async def acknowledged() -> bool:
                return bool(replies)

            await eventually(acknowledged, what="the acknowledgement")
        (ticket,) = await rows(svc, "ticket")
        (ack,) = replies
        assert ack.recipient.value == "+358401234567"  # on the resident's own channel
        assert "Välitin viestisi asiakaspalvelun henkilölle" in ack.text
        assert expected.format(case=ticket["case_number"]) in ack.text
