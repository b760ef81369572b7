"""Staff-side test helpers: tickets as the router leaves them, clients of the in-process web
app (httpx ASGI transport) and signing in."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI

from handoff.staff import StaffStore
from handoff.tickets import CONVERSATION, MESSAGE, TICKET
from router.app import Services
from router.events import new_id, utcnow


@dataclasses.dataclass
class Console:
    svc: Services
    app: FastAPI
    store: StaffStore
    tickets: dict[str, int]  # queue → an open ticket in it


async def add_ticket(
    svc: Services,
    queue: str,
    *,
    text: str = "Kysymys",
    created_at: datetime | None = None,
    urgent: bool = False,
    case_number: str | None = None,
) -> int:
    """A ticket as the router leaves it: a web conversation, a resident message, the ticket.
    Without ``case_number``, a random one."""
    now = created_at or utcnow()
    conversation = new_id()
    async with svc.engine.begin() as conn:
        await conn.execute(
            CONVERSATION.insert().values(
                id=conversation,
                thread_key=f"web:{conversation}",
                channel="web",
                address=f"web:{conversation}",
                language="fi",
                owner="human",
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            MESSAGE.insert().values(
                id=new_id(),
                conversation_id=conversation,
                role="resident",
                channel="web",
                text=text,
                sources=[],
                status="received",
                created_at=now,
            )
        )
        inserted = await conn.execute(
            TICKET.insert()
            .values(
                case_number=case_number or f"NV-T{new_id()[:4].upper()}-{new_id()[:4].upper()}",
                conversation_id=conversation,
                queue=queue,
                status="open",
                reason="asked_for_human",
                urgent=urgent,
                language="fi",
                sources=[],
                created_at=now,
                updated_at=now,
            )
            .returning(TICKET.c.id)
        )
        return int(inserted.scalar_one())


def client(
    app: FastAPI, base_url: str = "http://neuvonta.test", address: str = "192.0.2.10"
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


async def sign_in(c: httpx.AsyncClient, username: str, password: str) -> dict[str, Any]:
    """Sign in; later state changes of ``c`` carry the CSRF token."""
    r = await c.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    c.headers["X-CSRF-Token"] = body["csrf_token"]
    return body


async def switch_to(c: httpx.AsyncClient, username: str) -> None:
    """Sign ``c`` in afresh as ``username``, whose password is ``{username}-pw-1``."""
    c.cookies.clear()
    await sign_in(c, username, f"{username}-pw-1")
