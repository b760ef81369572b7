"""Console sign-in, sessions, CSRF and queue permissions: the real web app in-process
(httpx ASGI transport) on a real nats-server and real databases."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from handoff.auth import (
    BAD_CSRF,
    CSRF_COOKIE,
    NOT_SIGNED_IN,
    SESSION_COOKIE,
    SIGN_IN_FAILED,
    ensure_demo_user,
    hash_password,
    token_hash,
)
from handoff.staff import SESSION, USER, StaffStore
from router.events import utcnow
from router.web import create_web_app, staff_store
from tests.integration.harness import make_settings, services
from tests.integration.staff_helpers import Console, add_ticket, client, sign_in

ADMIN_PASSWORD = "boss-password-1"
AGENT_PASSWORD = "anna-password-1"


@contextlib.asynccontextmanager
async def console(
    tmp_path: Path, nats_url: str, database_url: str, **settings: Any
) -> AsyncIterator[Console]:
    async with services(make_settings(tmp_path, nats_url, database_url, **settings)) as svc:
        store = staff_store(svc)
        await store.add("boss", hash_password(ADMIN_PASSWORD), "admin")
        await store.add("anna", hash_password(AGENT_PASSWORD), "agent", ["housing"])
        tickets = {
            q: await add_ticket(svc, q, text=f"Kysymys jonoon {q}", case_number=f"NV-TEST-{i:04d}")
            for i, q in enumerate(("housing", "general"))
        }
        yield Console(svc, create_web_app(svc), store, tickets)


def set_cookies(r: httpx.Response) -> dict[str, SimpleCookie]:
    cookies: dict[str, SimpleCookie] = {}
    for header in r.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        (name,) = cookie.keys()
        cookies[name] = cookie
    return cookies


async def test_sign_in_starts_a_session_with_csrf_protection_and_sign_out_ends_it(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with console(tmp_path, nats_url, database_url) as con, client(con.app) as c:
        # Signed out: the API says so in JSON, the console page shows its sign-in form.
        for path in ("/api/tickets", "/api/queues", "/api/auth/me", "/api/tickets/1"):
            r = await c.get(path)
            assert r.status_code == 401, path
            assert r.json() == {"detail": NOT_SIGNED_IN}
        r = await c.post(f"/api/tickets/{con.tickets['housing']}/resolve")
        assert r.status_code == 401
        page = await c.get("/console")
        assert page.status_code == 200
        assert 'id="login-form"' in page.text
        assert "www-authenticate" not in page.headers

        r = await c.post("/api/auth/login", json={"username": "Anna", "password": AGENT_PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["username"] == "anna"
        assert body["role"] == "agent"
        assert body["queues"] == ["housing"]
        assert r.headers["cache-control"] == "no-store"
        cookies = set_cookies(r)
        session = cookies[SESSION_COOKIE][SESSION_COOKIE]
        assert session["httponly"] is True
        assert session["samesite"].lower() == "strict"
        assert session["path"] == "/"
        assert not session["secure"]  # plain http, no https public URL
        assert int(session["max-age"]) == 24 * 3600
        csrf = cookies[CSRF_COOKIE][CSRF_COOKIE]
        assert not csrf["httponly"]  # the page's script reads it
        assert csrf["samesite"].lower() == "strict"
        assert csrf.value == body["csrf_token"]

        # The database keeps hashes only.
        async with con.svc.engine.connect() as conn:
            (row,) = (await conn.execute(select(SESSION))).all()
            last_login = (
                await conn.execute(select(USER.c.last_login_at).where(USER.c.username == "anna"))
            ).scalar_one()
        assert row.token_hash == token_hash(session.value)
        assert row.csrf_hash == token_hash(csrf.value)
        assert session.value not in row and csrf.value not in row
        assert row.expires_at - row.created_at == timedelta(hours=24)
        assert last_login is not None and abs(utcnow() - last_login) < timedelta(minutes=1)

        me = await c.get("/api/auth/me")
        assert me.json() == {"username": "anna", "role": "agent", "queues": ["housing"]}

        # State changes need the CSRF token: missing, wrong, or a made-up pair all fail.
        ticket = con.tickets["housing"]
        reply = {"text": "Hei, tässä Anna."}
        r = await c.post(f"/api/tickets/{ticket}/reply", json=reply)
        assert r.status_code == 403
        assert r.json() == {"detail": BAD_CSRF}
        r = await c.post(
            f"/api/tickets/{ticket}/reply", json=reply, headers={"X-CSRF-Token": "guess"}
        )
        assert r.status_code == 403
        c.cookies.set(CSRF_COOKIE, "planted", domain="neuvonta.test")
        r = await c.post(
            f"/api/tickets/{ticket}/reply", json=reply, headers={"X-CSRF-Token": "planted"}
        )
        assert r.status_code == 403
        c.cookies.set(CSRF_COOKIE, csrf.value, domain="neuvonta.test")
        r = await c.post(
            f"/api/tickets/{ticket}/reply", json=reply, headers={"X-CSRF-Token": csrf.value}
        )
        assert r.status_code == 202, r.text
        detail = (await c.get(f"/api/tickets/{ticket}")).json()
        assert detail["transcript"][-1]["author"] == "anna"

        # Sign-out needs the token too, then ends the session for good.
        assert (await c.post("/api/auth/logout")).status_code == 403
        r = await c.post("/api/auth/logout", headers={"X-CSRF-Token": csrf.value})
        assert r.status_code == 204
        cleared = set_cookies(r)
        assert cleared[SESSION_COOKIE][SESSION_COOKIE]["max-age"] == "0"
        assert cleared[CSRF_COOKIE][CSRF_COOKIE]["max-age"] == "0"
        async with con.svc.engine.connect() as conn:
            assert (await conn.execute(select(SESSION))).all() == []
        # The old cookie no longer signs anybody in.
        c.cookies.set(SESSION_COOKIE, session.value, domain="neuvonta.test")
        assert (await c.get("/api/auth/me")).status_code == 401
        assert (await c.post("/api/auth/logout")).status_code == 204  # harmless when out


async def test_an_agent_sees_and_works_on_their_own_queues_only(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with (
        console(tmp_path, nats_url, database_url) as con,
        client(con.app) as anna,
        client(con.app) as boss,
    ):
        await sign_in(anna, "anna", AGENT_PASSWORD)
        await sign_in(boss, "boss", ADMIN_PASSWORD)
        housing, general = con.tickets["housing"], con.tickets["general"]

        queues = (await anna.get("/api/queues")).json()
        assert [q["name"] for q in queues] == ["housing"]
        listed = (await anna.get("/api/tickets", params={"status": "all"})).json()
        assert [t["id"] for t in listed] == [housing]
        asked = await anna.get("/api/tickets", params={"queue": ["general", "housing"]})
        assert [t["id"] for t in asked.json()] == [housing]
        assert (await anna.get("/api/tickets", params={"queue": "general"})).json() == []
        assert (await anna.get(f"/api/tickets/{housing}")).status_code == 200

        r = await anna.get(f"/api/tickets/{general}")
        assert r.status_code == 403
        assert r.json() == {"detail": "This ticket is in a queue you do not work in."}
        r = await anna.post(f"/api/tickets/{general}/reply", json={"text": "Hei"})
        assert r.status_code == 403
        assert (await anna.post(f"/api/tickets/{general}/resolve")).status_code == 403
        assert (await anna.get("/api/tickets/999999")).status_code == 404

        # The admin sees everything, and the refused actions changed nothing.
        me = (await boss.get("/api/auth/me")).json()
        assert me["role"] == "admin" and "general" in me["queues"]
        assert len((await boss.get("/api/queues")).json()) == 12
        listed = (await boss.get("/api/tickets")).json()
        assert {t["id"] for t in listed} == {housing, general}
        detail = (await boss.get(f"/api/tickets/{general}")).json()
        assert detail["status"] == "open"
        assert [m["role"] for m in detail["transcript"]] == ["resident"]
        resolved = await boss.post(f"/api/tickets/{general}/resolve")
        assert resolved.json()["resolved_by"] == "boss"


async def test_wrong_unknown_and_disabled_accounts_get_the_same_refusal(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with console(tmp_path, nats_url, sqlite_url) as con, client(con.app) as c:
        await con.store.add("ville", hash_password("ville-password"), "agent", ["housing"])
        signed_in = client(con.app, address="192.0.2.20")
        async with signed_in:
            await sign_in(signed_in, "ville", "ville-password")
            assert await con.store.disable("ville") == 1  # his session ends with it
            assert (await signed_in.get("/api/tickets")).status_code == 401

        attempts = [
            ("anna", "wrong-password"),
            ("nobody", AGENT_PASSWORD),
            ("ville", "ville-password"),  # right, but disabled
            ("anna", ""),
            ("", ""),
            ("anna", AGENT_PASSWORD + "x" * 2000),
        ]
        for username, password in attempts:
            r = await c.post("/api/auth/login", json={"username": username, "password": password})
            assert r.status_code == 401, (username, r.text)
            assert r.json() == {"detail": SIGN_IN_FAILED}
            assert "set-cookie" not in r.headers
        # A form post from another site is not JSON: refused before any password check.
        r = await c.post(
            "/api/auth/login",
            content=f'{{"username": "anna", "password": "{AGENT_PASSWORD}"}}',
            headers={"content-type": "text/plain"},
        )
        assert r.status_code == 422
        async with con.svc.engine.connect() as conn:
            assert (await conn.execute(select(SESSION))).all() == []


async def test_five_failed_sign_ins_make_that_username_and_address_wait(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with console(tmp_path, nats_url, sqlite_url) as con, client(con.app) as c:
        wrong = {"username": "anna", "password": "not-her-password"}
        for _ in range(4):
            assert (await c.post("/api/auth/login", json=wrong)).status_code == 401
        r = await c.post("/api/auth/login", json=wrong)
        assert r.status_code == 429
        assert r.headers["retry-after"] == "60"
        assert "try again in 60 seconds" in r.json()["detail"]
        # Locked: even the right password waits, and says why.
        right = {"username": "anna", "password": AGENT_PASSWORD}
        r = await c.post("/api/auth/login", json=right)
        assert r.status_code == 429
        assert "Too many failed sign-ins" in r.json()["detail"]
        # Another address, or another account from this one, is not affected.
        async with client(con.app, address="192.0.2.99") as elsewhere:
            assert (await elsewhere.post("/api/auth/login", json=right)).status_code == 200
        boss = {"username": "boss", "password": ADMIN_PASSWORD}
        assert (await c.post("/api/auth/login", json=boss)).status_code == 200


async def test_cookies_are_secure_over_https_and_behind_an_https_public_url(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    credentials = {"username": "anna", "password": AGENT_PASSWORD}
    async with console(tmp_path, nats_url, sqlite_url) as con:
        async with client(con.app, base_url="https://neuvonta.test") as c:
            r = await c.post("/api/auth/login", json=credentials)
            cookies = set_cookies(r)
            assert cookies[SESSION_COOKIE][SESSION_COOKIE]["secure"] is True
            assert cookies[CSRF_COOKIE][CSRF_COOKIE]["secure"] is True
        behind_proxy = dataclasses.replace(
            con.svc,
            settings=con.svc.settings.model_copy(update={"public_url": "https://kunta.example"}),
        )
        async with client(create_web_app(behind_proxy)) as c:
            r = await c.post("/api/auth/login", json=credentials)
            assert set_cookies(r)[SESSION_COOKIE][SESSION_COOKIE]["secure"] is True


async def test_sessions_end_when_idle_or_too_old(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with console(tmp_path, nats_url, sqlite_url) as con:
        store = con.store
        (anna,) = [u for u in await store.all() if u.username == "anna"]
        start = utcnow()
        await store.start_session(anna.id, "a" * 64, "c" * 64, now=start)
        # Used now and then: alive, and each use moves the idle limit on.
        for hours in (1, 8, 15, 22):
            found = await store.session("a" * 64, now=start + timedelta(hours=hours))
            assert found is not None, hours
            assert found[0].username == "anna" and found[1] == "c" * 64
        # 24 hours after sign-in it ends however busy it was.
        assert await store.session("a" * 64, now=start + timedelta(hours=24)) is None
        assert await store.sessions_of("anna") == 0

        await store.start_session(anna.id, "b" * 64, "c" * 64, now=start)
        # A look that does not count as activity leaves the idle clock running.
        assert await store.session("b" * 64, now=start + timedelta(hours=7), touch=False)
        assert await store.session("b" * 64, now=start + timedelta(hours=8)) is None
        assert await store.session("unknown", now=start) is None


async def test_the_demo_admin_is_created_only_into_an_empty_account_table(
    tmp_path: Path, sqlite_url: str
) -> None:
    from router.db import create_engine, create_schema

    engine = create_engine(sqlite_url)
    await create_schema(engine)
    store = StaffStore(engine)
    data = tmp_path / "var"
    try:
        assert await ensure_demo_user(store, "demo", data, "demo-secret-1") == "demo-secret-1"
        (demo,) = await store.all()
        assert (demo.username, demo.role) == ("demo", "admin")
        # Later starts: printed while it still signs in, never created again.
        assert await ensure_demo_user(store, "demo", data, "demo-secret-1") == "demo-secret-1"
        assert await ensure_demo_user(store, "demo", data, "changed-since") is None
        assert await ensure_demo_user(store, "demo", data, None) is None
        assert await ensure_demo_user(store, "other", data, "other-secret-1") is None
        assert [u.username for u in await store.all()] == ["demo"]
        await store.disable("demo")
        assert await ensure_demo_user(store, "demo", data, "demo-secret-1") is None
    finally:
        await engine.dispose()

    # No password configured: one is generated into the data folder, readable by its owner.
    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    await create_schema(engine)
    try:
        password = await ensure_demo_user(StaffStore(engine), "demo", data, None)
        kept = data / "console-password"
        assert password and kept.read_text().strip() == password
        assert kept.stat().st_mode & 0o777 == 0o600
        assert await ensure_demo_user(StaffStore(engine), "demo", data, None) == password
    finally:
        await engine.dispose()
