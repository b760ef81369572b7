"""Telegram webhook mode: the route on a real app, NATS JetStream, SQLite and the fake Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from channels.inbox import Inbox
from channels.ratelimit import RateLimits
from channels.telegram import TelegramAdapter, from_settings
from channels.telegram.parse import SECRET_HEADER
from router.app import Services
from router.events import Address, Channel, MessageReceived
from router.subjects import Stream, message_received
from tests.fakes.telegram_server import TelegramFake, private_message
from tests.integration.harness import make_settings, services

SECRET = "webhook-Secret_123"
SUBJECT = message_received(Channel.TELEGRAM)


@dataclass
class Webhook:
    svc: Services
    adapter: TelegramAdapter
    inbox: Inbox
    client: httpx.AsyncClient
    fake: TelegramFake

    async def post(
        self, body: bytes | dict[str, Any], secret: str | None = SECRET
    ) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"content-type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        return await self.client.post("/webhooks/telegram", content=content, headers=headers)


@contextlib.asynccontextmanager
async def webhook(
    tmp_path: Path, nats_url: str, sqlite_url: str, limits: RateLimits | None = None
) -> AsyncIterator[Webhook]:
    async with TelegramFake() as fake:
        settings = make_settings(
            tmp_path,
            nats_url,
            sqlite_url,
            public_url="https://kunta.example",
            telegram_bot_token=fake.token,
            telegram_webhook_secret=SECRET,
            telegram_api_url=fake.api_url,
        )
        async with services(settings) as svc:
            adapter = from_settings(settings)
            assert adapter is not None and adapter.webhook_mode
            inbox = Inbox(svc.engine, svc.publisher, svc.metrics, limits)
            app = FastAPI()
            router = adapter.webhooks(inbox)
            assert router is not None
            app.include_router(router)
            transport = httpx.ASGITransport(app=app)
            try:
                async with httpx.AsyncClient(
                    transport=transport, base_url="https://kunta.example"
                ) as client:
                    yield Webhook(svc, adapter, inbox, client, fake)
            finally:
                await adapter.aclose()


async def stored(svc: Services) -> list[MessageReceived]:
    """The Telegram messages in the JetStream stream (not what was published: duplicates
    a publisher sent are stored once)."""
    js = svc.broker.connection.jetstream()
    info = await js.stream_info(Stream.CONVERSATIONS, subjects_filter=SUBJECT)
    n = (info.state.subjects or {}).get(SUBJECT, 0)
    if not n:
        return []
    sub = await js.pull_subscribe(SUBJECT, stream=Stream.CONVERSATIONS)
    try:
        msgs = await sub.fetch(n, timeout=2)
    finally:
        await sub.unsubscribe()
    return [MessageReceived.from_json(m.data) for m in msgs]


def text_update(update_id: int, text: str, language: str | None = "fi") -> dict[str, Any]:
    return {"update_id": update_id, "message": private_message(4242, 17, text, language)}


async def test_a_message_with_the_right_secret_is_published_once(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with webhook(tmp_path, nats_url, sqlite_url) as hook:
        response = await hook.post(text_update(900, "Milloin kirjasto on auki?"))
        assert response.status_code == 200
        assert response.json() == {}
        (item,) = await stored(hook.svc)
        assert item.provider_message_id == "4242:17"
        assert item.sender == Address(channel=Channel.TELEGRAM, value="4242")
        assert item.text == "Milloin kirjasto on auki?"
        assert item.metadata == {"language_code": "fi", "update_id": "900"}
        # Telegram delivers the same update again (our answer was late): stored once.
        again = await hook.post(text_update(900, "Milloin kirjasto on auki?"))
        assert again.status_code == 200
        assert len(await stored(hook.svc)) == 1
        assert hook.fake.sent == []


@pytest.mark.parametrize(
    ("secret", "reason"), [(None, "missing secret token"), ("guessed", "wrong secret token")]
)
async def test_a_missing_or_wrong_secret_is_refused(
    tmp_path: Path, nats_url: str, sqlite_url: str, secret: str | None, reason: str
) -> None:
    async with webhook(tmp_path, nats_url, sqlite_url) as hook:
        response = await hook.post(text_update(901, "Hei"), secret=secret)
        assert response.status_code == 403
        assert response.text == reason
        assert await stored(hook.svc) == []
        assert hook.svc.metrics.rejected.labels("telegram", "bad_secret")._value.get() == 1


async def test_malformed_and_oversized_bodies_are_refused(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with webhook(tmp_path, nats_url, sqlite_url) as hook:
        broken = await hook.post(b'{"update_id": 1, "message": ')
        assert (broken.status_code, broken.text) == (400, "not JSON")
        not_update = await hook.post(b"[1, 2, 3]")
        assert (not_update.status_code, not_update.text) == (400, "not a JSON object")
        huge = await hook.post(b'{"update_id": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}')
        assert huge.status_code == 413
        assert await stored(hook.svc) == []


async def test_updates_the_service_does_not_answer_are_acknowledged(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with webhook(tmp_path, nats_url, sqlite_url) as hook:
        group = private_message(-100500, 3, "Hei kaikki")
        group["chat"] = {"id": -100500, "title": "Kylätoimikunta", "type": "group"}
        for body in (
            {"update_id": 910, "message": group},
            {"update_id": 911, "edited_message": private_message(4242, 17, "korjattu")},
        ):
            response = await hook.post(body)
            assert response.status_code == 200
        assert await stored(hook.svc) == []


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("sv", ("Hej!", "AI-assistent", "människa")),
        ("fi", ("Hei!", "tekoälyavustaja", "ihmisen kanssa")),
        ("de", ("Hei!", "Hej!", "Hello!")),
    ],
)
async def test_start_is_greeted_in_the_residents_language_and_not_sent_to_the_ai(
    tmp_path: Path, nats_url: str, sqlite_url: str, language: str, expected: tuple[str, ...]
) -> None:
    async with webhook(tmp_path, nats_url, sqlite_url) as hook:
        response = await hook.post(text_update(920, "/start", language))
        assert response.status_code == 200
        (greeting,) = hook.fake.sent
        assert greeting.chat_id == 4242
        assert all(words in greeting.text for words in expected)
        # The same /start delivered again is not greeted twice.
        await hook.post(text_update(920, "/start", language))
        assert len(hook.fake.sent) == 1
        assert await stored(hook.svc) == []


async def test_an_unavailable_bus_asks_telegram_to_retry(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with webhook(tmp_path, nats_url, sqlite_url) as hook:
        js = hook.svc.broker.connection.jetstream()
        await js.delete_stream(Stream.CONVERSATIONS)
        response = await hook.post(text_update(930, "Hei"))
        assert (response.status_code, response.text) == (503, "try again later")


async def test_receive_registers_the_webhook_with_its_secret(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with webhook(tmp_path, nats_url, sqlite_url) as hook:
        # Telegram is down at first: the adapter tries again instead of giving up.
        hook.fake.fail_next("setWebhook", 1, 502, "Bad Gateway")
        hook.adapter.retry_delay = 0.05
        await asyncio.wait_for(hook.adapter.receive(hook.inbox, asyncio.Event()), 5)
        assert hook.fake.webhook is not None
        assert hook.fake.webhook["url"] == "https://kunta.example/webhooks/telegram"
        assert hook.fake.webhook["secret_token"] == SECRET
        assert json.loads(hook.fake.webhook["allowed_updates"]) == ["message"]
        assert hook.fake.methods() == ["getMe", "setWebhook", "setWebhook"]


async def test_receive_returns_when_stopped_while_telegram_is_down(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with webhook(tmp_path, nats_url, sqlite_url) as hook:
        hook.fake.fail_next("getMe", 100, 502, "Bad Gateway")
        hook.adapter.retry_delay = 30
        stopping = asyncio.Event()
        task = asyncio.create_task(hook.adapter.receive(hook.inbox, stopping))
        await asyncio.sleep(0.2)
        stopping.set()
        await asyncio.wait_for(task, 2)
        assert hook.fake.webhook is None
