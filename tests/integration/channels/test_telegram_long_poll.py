"""Telegram long-poll mode against the fake Bot API, with real NATS JetStream and SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from channels.base import Parsed
from channels.inbox import Inbox
from channels.telegram import TelegramAdapter
from channels.telegram.poll import OFFSET_KEY
from router.app import Services
from router.events import Channel, MessageReceived
from router.subjects import message_received
from tests.fakes.telegram_server import BOT_USER, TelegramFake
from tests.integration.channels.test_telegram_webhook import stored
from tests.integration.harness import collect, eventually, make_settings, services

SUBJECT = message_received(Channel.TELEGRAM)


@contextlib.asynccontextmanager
async def polling(adapter: TelegramAdapter, inbox: Inbox) -> AsyncIterator[asyncio.Event]:
    """``receive`` running as the gateway runs it; stopped (and awaited) on leaving."""
    stopping = asyncio.Event()
    task = asyncio.create_task(adapter.receive(inbox, stopping))
    try:
        yield stopping
    finally:
        stopping.set()
        await asyncio.wait_for(task, 5)
        await adapter.aclose()


def adapter_for(fake: TelegramFake, **kw: Any) -> TelegramAdapter:
    return TelegramAdapter(fake.token, api_url=fake.api_url, poll_timeout=1, retry_delay=0.05, **kw)


@contextlib.asynccontextmanager
async def running(tmp_path: Path, nats_url: str, sqlite_url: str) -> AsyncIterator[Services]:
    async with services(make_settings(tmp_path, nats_url, sqlite_url)) as svc:
        yield svc


async def test_queued_updates_are_published_and_the_offset_is_stored(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with TelegramFake() as fake, running(tmp_path, nats_url, sqlite_url) as svc:
        fake.webhook = {"url": "https://old.example/hook"}  # left over from webhook mode
        first = fake.queue_message(4242, "Milloin kirjasto on auki?")
        fake.queue_message(5151, "När öppnar simhallen?", language_code="sv")
        last = fake.queue_message(6161, "/start", language_code="en")
        inbox = Inbox(svc.engine, svc.publisher)
        async with polling(adapter_for(fake), inbox):
            await eventually(lambda: fake.sent, what="the greeting")
            await eventually(lambda: inbox.state.get(OFFSET_KEY), what="the stored offset")
        items = await stored(svc)
        assert [(m.provider_message_id, m.text) for m in items] == [
            (f"4242:{first['message']['message_id']}", "Milloin kirjasto on auki?"),
            (f"5151:{first['message']['message_id'] + 1}", "När öppnar simhallen?"),
        ]
        assert items[1].metadata["language_code"] == "sv"
        (greeting,) = fake.sent
        assert greeting.chat_id == 6161
        assert greeting.text.startswith("Hello!") and "AI assistant" in greeting.text
        assert await inbox.state.get(OFFSET_KEY) == {
            "offset": last["update_id"] + 1,
            "bot_id": BOT_USER["id"],
        }
        methods = fake.methods()
        assert methods[:3] == ["getMe", "deleteWebhook", "getUpdates"]
        assert fake.webhook is None
        assert fake.offsets_asked()[0] is None


async def test_a_restart_resumes_from_the_stored_offset_and_replays_nothing(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with TelegramFake() as fake, running(tmp_path, nats_url, sqlite_url) as svc:
        # As if the process died right after storing the offset: Telegram never heard of it.
        fake.forget_confirmed = False
        fake.queue_message(4242, "Milloin kirjasto on auki?")
        last = fake.queue_message(4242, "Entä lauantaina?")
        inbox = Inbox(svc.engine, svc.publisher)
        async with polling(adapter_for(fake), inbox):
            await eventually(lambda: inbox.state.get(OFFSET_KEY), what="the stored offset")
        assert len(await stored(svc)) == 2

        published = await collect(svc, SUBJECT, MessageReceived)
        calls_before = len(fake.offsets_asked())
        restarted = Inbox(svc.engine, svc.publisher)
        async with polling(adapter_for(fake), restarted):
            await eventually(lambda: len(fake.offsets_asked()) > calls_before, what="a getUpdates")
            later = fake.queue_message(4242, "Kiitos!")
            await eventually(lambda: published, what="the new message")
        assert fake.offsets_asked()[calls_before] == last["update_id"] + 1
        # Only the new message was published again: the first two were not replayed.
        assert [m.text for m in published] == ["Kiitos!"]
        assert len(await stored(svc)) == 3
        assert (await restarted.state.get(OFFSET_KEY) or {})["offset"] == later["update_id"] + 1


class FlakyInbox(Inbox):
    """The bus is down for the first ``failures`` batches."""

    def __init__(self, *args: Any, failures: int = 1) -> None:
        super().__init__(*args)
        self.failures = failures
        self.batches: list[int] = []

    async def accept(self, parsed: Parsed | Any) -> None:
        items = list(parsed.items if isinstance(parsed, Parsed) else parsed)
        self.batches.append(len(items))
        if self.failures:
            self.failures -= 1
            raise ConnectionError("nats: no servers available")
        await super().accept(items)


async def test_a_batch_the_inbox_could_not_take_is_fetched_again_and_nothing_is_lost(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with TelegramFake() as fake, running(tmp_path, nats_url, sqlite_url) as svc:
        update = fake.queue_message(4242, "Milloin kirjasto on auki?")
        inbox = FlakyInbox(svc.engine, svc.publisher, failures=2)
        async with polling(adapter_for(fake), inbox):
            await eventually(lambda: inbox.state.get(OFFSET_KEY), what="the stored offset")
        assert inbox.batches == [1, 1, 1]
        # The offset was not moved past the update until it was accepted.
        assert fake.offsets_asked()[:3] == [None, None, None]
        assert [m.text for m in await stored(svc)] == ["Milloin kirjasto on auki?"]
        assert (await inbox.state.get(OFFSET_KEY) or {})["offset"] == update["update_id"] + 1


async def test_an_offset_stored_for_another_bot_is_not_used(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with TelegramFake() as fake, running(tmp_path, nats_url, sqlite_url) as svc:
        inbox = Inbox(svc.engine, svc.publisher)
        await inbox.state.set(OFFSET_KEY, {"offset": 10**9, "bot_id": 1})
        fake.queue_message(4242, "Hei")
        async with polling(adapter_for(fake), inbox):
            await eventually(lambda: _offset_of(inbox, BOT_USER["id"]), what="this bot's offset")
        assert fake.offsets_asked()[0] is None
        assert [m.text for m in await stored(svc)] == ["Hei"]


async def _offset_of(inbox: Inbox, bot_id: int) -> bool:
    stored = await inbox.state.get(OFFSET_KEY)
    return bool(stored and stored["bot_id"] == bot_id)


async def test_stopping_ends_a_long_poll_at_once(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with TelegramFake() as fake, running(tmp_path, nats_url, sqlite_url) as svc:
        adapter = TelegramAdapter(fake.token, api_url=fake.api_url, poll_timeout=25)
        stopping = asyncio.Event()
        task = asyncio.create_task(adapter.receive(Inbox(svc.engine, svc.publisher), stopping))
        await eventually(lambda: "getUpdates" in fake.methods(), what="the long poll")
        started = time.monotonic()
        stopping.set()
        await asyncio.wait_for(task, 2)
        assert time.monotonic() - started < 1
        await adapter.aclose()


async def test_the_poll_keeps_trying_while_telegram_is_down(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with TelegramFake() as fake, running(tmp_path, nats_url, sqlite_url) as svc:
        fake.fail_next("getMe", 2, 502, "Bad Gateway")
        fake.fail_next("getUpdates", 2, 500)
        fake.queue_message(4242, "Hei")
        inbox = Inbox(svc.engine, svc.publisher)
        async with polling(adapter_for(fake), inbox):
            await eventually(lambda: inbox.state.get(OFFSET_KEY), what="the stored offset")
        assert fake.methods()[:7] == [
            "getMe",
            "getMe",
            "getMe",
            "deleteWebhook",
            "getUpdates",
            "getUpdates",
            "getUpdates",
        ]
        assert [m.text for m in await stored(svc)] == ["Hei"]
