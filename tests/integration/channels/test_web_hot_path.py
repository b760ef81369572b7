"""Accepting a web chat message is served past FastAPI (``channels.web.hot``): a browser or
an API client must get exactly what the documented FastAPI route gives, for every kind of
request, and only accepted messages may reach the bus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from channels.web.api import Chat, add_chat, chat_router, max_body_bytes
from router.app import Services
from router.conversations import Conversations
from router.events import Channel
from router.web import create_web_app
from tests.integration.channels.test_twilio_webhooks import on_bus
from tests.integration.harness import make_settings, services
from tests.integration.staff_helpers import client

MAX_CHARS = 50


def chat(svc: Services) -> Chat:
    return chat_router(
        conversations=Conversations(svc.engine),
        publisher=svc.publisher,
        hub=svc.hub,
        metrics=svc.metrics,
        max_chars=MAX_CHARS,
    )


def documented_only(svc: Services) -> FastAPI:
    """The chat with its FastAPI routes alone: the reference the hot route must match."""
    app = FastAPI()
    app.include_router(chat(svc).documented)
    return app


def hot(svc: Services) -> FastAPI:
    app = FastAPI()
    add_chat(app, chat(svc))
    return app


def comparable(r: httpx.Response) -> tuple[int, Any, str | None]:
    return r.status_code, r.json(), r.headers.get("content-type")


BAD_REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("empty", {"json": {"text": "   "}}),
    ("too long", {"json": {"text": "x" * (MAX_CHARS + 1)}}),
    ("no text", {"json": {}}),
    ("text not a string", {"json": {"text": 5}}),
    ("not an object", {"json": ["Hei"]}),
    ("not JSON", {"content": b'{"text": ', "headers": {"content-type": "application/json"}}),
    ("no body", {}),
    (
        "not JSON by its type",
        {"content": b'{"text": "Hei"}', "headers": {"content-type": "text/plain"}},
    ),
    (
        "JSON by a +json type",
        {"content": b'{"text": " "}', "headers": {"content-type": "application/x+json"}},
    ),
    ("bad client id", {"json": {"text": "Hei", "client_message_id": "a b"}}),
    (
        "over the size cap",
        {
            "content": b" " * (max_body_bytes(MAX_CHARS) + 1),
            "headers": {"content-type": "application/json"},
        },
    ),
]


async def test_bad_messages_get_the_documented_routes_errors_and_nothing_reaches_the_bus(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        async with client(hot(svc)) as fast, client(documented_only(svc)) as slow:
            session = (await fast.post("/api/chat/sessions")).json()["session_id"]
            path = f"/api/chat/sessions/{session}/messages"
            for what, request in BAD_REQUESTS:
                got, want = await fast.post(path, **request), await slow.post(path, **request)
                assert got.status_code in (413, 422), (what, got.text)
                assert comparable(got) == comparable(want), what
            assert (await fast.post(path, json={"text": "x"})).status_code == 202
            unknown = "/api/chat/sessions/no-such-session/messages"
            got, want = (
                await fast.post(unknown, json={"text": "Hei"}),
                await slow.post(unknown, json={"text": "Hei"}),
            )
            assert (got.status_code, got.json()) == (want.status_code, want.json())
            assert got.json() == {"detail": "No such chat session."}
            # Other methods on the path still reach FastAPI's routes.
            assert (await fast.get(path)).status_code == 200
            assert (await fast.put(path, json={"text": "Hei"})).status_code == 405
        assert [e.text for e in await on_bus(svc, Channel.WEB)] == ["x"]


async def test_an_accepted_message_is_on_the_bus_under_the_id_the_client_got(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        async with client(create_web_app(svc)) as c:
            session = (await c.post("/api/chat/sessions")).json()["session_id"]
            path = f"/api/chat/sessions/{session}/messages"
            r = await c.post(path, json={"text": " Milloin kirjasto on auki? "})
            again = await c.post(path, json={"text": "Hei", "client_message_id": "b-1"})
            retry = await c.post(path, json={"text": "Hei", "client_message_id": "b-1"})
            assert r.status_code == 202 and r.headers["content-type"] == "application/json"
            assert again.json() == retry.json()  # a browser's retry is one message
            documented = (await c.get("/api/openapi.json")).json()["paths"][
                path.replace(session, "{session_id}")
            ]
            assert documented["post"]["responses"]["202"]
        on = {e.message_id: e for e in await on_bus(svc, Channel.WEB)}
        assert set(on) == {r.json()["message_id"], again.json()["message_id"]}
        assert on[r.json()["message_id"]].text == "Milloin kirjasto on auki?"
        assert on[r.json()["message_id"]].sender.value == session
