""" "AI was right / wrong" labels on a ticket that the real router opened (real nats-server,
real SQLite and PostgreSQL): who may label, the latest label in the ticket, the history."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from sqlalchemy import func, select

from agents.base import Assessment, TriageRequest
from handoff.auth import BAD_CSRF, NOT_SIGNED_IN, hash_password
from handoff.console.api import FORBIDDEN, NOT_FOUND
from handoff.labels import LABEL, LabelStore
from router.app import Services
from router.events import Address, Channel, MessageReceived
from router.web import create_web_app, staff_store
from tests.integration.harness import (
    ScriptedAgent,
    count,
    eventually,
    library_answer,
    make_settings,
    rows,
    services,
    worker,
)
from tests.integration.staff_helpers import client, switch_to

QUEUE = "culture-leisure"  # where the scripted agent's department P25 goes


def unsure() -> ScriptedAgent:
    """A library draft at confidence 0.4: below the 0.5 default, above the routing floor, so
    the case goes to a person in the library's queue."""

    async def behave(request: TriageRequest) -> Assessment:
        return library_answer(request).model_copy(update={"confidence": 0.4})

    return ScriptedAgent(behave)


@contextlib.asynccontextmanager
async def ticket_from_router(
    tmp_path: Path, nats_url: str, database_url: str
) -> AsyncIterator[tuple[Services, httpx.AsyncClient, int]]:
    """Staff accounts and one ticket, opened by a resident message through the router."""
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        store = staff_store(svc)
        await store.add("boss", hash_password("boss-pw-1"), "admin")
        await store.add("carl", hash_password("carl-pw-1"), "agent", [QUEUE])
        await store.add("anna", hash_password("anna-pw-1"), "agent", ["housing"])
        async with worker(svc, unsure()):
            await svc.publisher.publish(
                MessageReceived(
                    channel=Channel.SMS,
                    provider_message_id="SM-label-1",
                    sender=Address(channel=Channel.SMS, value="+358401110001"),
                    text="Milloin kirjasto on auki lauantaina?",
                )
            )

            async def opened() -> bool:
                return await count(svc, "ticket") == 1

            await eventually(opened, what="the ticket")
        (ticket,) = await rows(svc, "ticket")
        assert (ticket["queue"], ticket["reason"]) == (QUEUE, "low_confidence")
        async with client(create_web_app(svc), address="192.0.2.11") as c:
            yield svc, c, int(ticket["id"])


async def test_an_agent_of_the_queue_labels_a_ticket_and_a_later_label_replaces_it(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with ticket_from_router(tmp_path, nats_url, database_url) as (svc, c, ticket_id):
        await switch_to(c, "carl")
        r = await c.get(f"/api/tickets/{ticket_id}")
        assert r.status_code == 200 and r.json()["label"] is None

        r = await c.post(
            f"/api/tickets/{ticket_id}/label",
            json={"department_correct": True, "answer_correct": False},
        )
        assert r.status_code == 200, r.text
        first = r.json()
        assert {k: first[k] for k in ("ticket_id", "department_correct", "answer_correct")} == {
            "ticket_id": ticket_id,
            "department_correct": True,
            "answer_correct": False,
        }
        assert first["labelled_by"] == "carl" and first["labelled_at"]
        assert (await c.get(f"/api/tickets/{ticket_id}")).json()["label"] == first

        # Someone else changes their mind: the new label counts, the old one stays on record.
        await switch_to(c, "boss")
        r = await c.post(
            f"/api/tickets/{ticket_id}/label",
            json={"department_correct": None, "answer_correct": True},
        )
        assert r.status_code == 200, r.text
        shown = (await c.get(f"/api/tickets/{ticket_id}")).json()["label"]
        assert (shown["department_correct"], shown["answer_correct"], shown["labelled_by"]) == (
            None,
            True,
            "boss",
        )
        history = await LabelStore(svc.engine).history(ticket_id)
        assert [(h.labelled_by, h.department_correct, h.answer_correct) for h in history] == [
            ("carl", True, False),
            ("boss", None, True),
        ]
        r = await c.get(f"/api/tickets/{ticket_id}/labels")
        assert r.status_code == 200
        assert [h["labelled_by"] for h in r.json()] == ["carl", "boss"]
        assert r.json()[-1] == shown
        async with svc.engine.connect() as conn:  # one current label per ticket
            assert (await conn.execute(select(func.count()).select_from(LABEL))).scalar_one() == 1


async def test_labels_follow_the_ticket_permissions_and_refuse_bad_bodies(
    tmp_path: Path, nats_url: str
) -> None:
    database_url = f"sqlite:///{tmp_path / 'neuvonta.db'}"
    async with ticket_from_router(tmp_path, nats_url, database_url) as (svc, c, ticket_id):
        body = {"department_correct": True, "answer_correct": True}
        path = f"/api/tickets/{ticket_id}/label"
        r = await c.post(path, json=body)
        assert (r.status_code, r.json()) == (401, {"detail": NOT_SIGNED_IN})

        assert (await c.get(f"{path}s")).status_code == 401

        await switch_to(c, "anna")  # housing only
        r = await c.post(path, json=body)
        assert (r.status_code, r.json()) == (403, {"detail": FORBIDDEN})
        assert (await c.get(f"{path}s")).status_code == 403

        await switch_to(c, "carl")
        token = c.headers.pop("X-CSRF-Token")
        r = await c.post(path, json=body)
        assert (r.status_code, r.json()) == (403, {"detail": BAD_CSRF})
        c.headers["X-CSRF-Token"] = token

        r = await c.post("/api/tickets/999999/label", json=body)
        assert (r.status_code, r.json()) == (404, {"detail": NOT_FOUND})
        for bad in (
            {"department_correct": "yes", "answer_correct": True},
            {"answer_correct": True},
            {**body, "extra": 1},
        ):
            r = await c.post(path, json=bad)
            assert r.status_code == 422, bad
        assert await LabelStore(svc.engine).get(ticket_id) is None
        assert (await c.post(path, json=body)).status_code == 200
