"""Inbound rate limits on every channel, on the real bus and database: what a sender over
the limit gets back, that their message is not on the bus, and that others still get through.

The limiter's clock is a fake one the tests move: nothing sleeps through a window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from fastapi import FastAPI

from channels.email import from_settings as email_adapter
from channels.inbox import Inbox
from channels.ratelimit import RateLimits
from channels.web.api import add_chat, chat_router
from router.app import Services
from router.conversations import Conversations
from router.events import Address, Channel
from tests.fakes.telegram_server import TelegramFake, private_message
from tests.fakes.twilio_server import inbound_sms, new_sid
from tests.integration.channels import test_twilio_webhooks as twilio_tests
from tests.integration.channels.test_email_smtp import OURS, email_settings, question
from tests.integration.channels.test_telegram_long_poll import adapter_for, polling
from tests.integration.channels.test_telegram_webhook import webhook
from tests.integration.channels.test_twilio_webhooks import on_bus
from tests.integration.harness import eventually, make_settings, services
from tests.integration.staff_helpers import client


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


RESIDENT = "192.0.2.30"
NEIGHBOUR = "192.0.2.31"


def rejected(svc: Services, channel: str) -> float:
    value: float = svc.metrics.rejected.labels(channel, "rate_limited")._value.get()
    return value


# ---- web chat -----------------------------------------------------------------------------


def chat_app(svc: Services, limits: RateLimits) -> FastAPI:
    app = FastAPI()
    add_chat(
        app,
        chat_router(
            conversations=Conversations(svc.engine),
            publisher=svc.publisher,
            hub=svc.hub,
            metrics=svc.metrics,
            max_chars=svc.settings.max_message_chars,
            limits=limits,
        ),
    )
    return app


async def new_session(c: httpx.AsyncClient) -> str:
    r = await c.post("/api/chat/sessions", json={"language": "fi"})
    assert r.status_code == 201, r.text
    return str(r.json()["session_id"])


async def say(c: httpx.AsyncClient, session: str, text: str) -> httpx.Response:
    return await c.post(f"/api/chat/sessions/{session}/messages", json={"text": text})


async def test_a_chat_over_its_limit_gets_429_with_retry_after_until_the_window_passes(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    clock = Clock()
    limits = RateLimits(per_sender=3, per_ip=100, clock=clock)
    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        app = chat_app(svc, limits)
        async with client(app, address=RESIDENT) as mine, client(app, address=NEIGHBOUR) as other:
            session = await new_session(mine)
            for i in range(3):
                assert (await say(mine, session, f"Kysymys {i}")).status_code == 202
                clock.now += 5
            r = await say(mine, session, "Kysymys 3")
            assert r.status_code == 429
            assert r.headers["Retry-After"] == "45"  # the first is a minute old in 45 s
            assert r.json() == {
                "detail": "Too many messages in this chat: try again in 45 seconds."
            }
            # Someone else (even from the same address) still gets through.
            assert (await say(mine, await new_session(mine), "Hei")).status_code == 202
            assert (await say(other, await new_session(other), "Hej")).status_code == 202
            texts = [m.text for m in await on_bus(svc, Channel.WEB)]
            assert sorted(texts) == ["Hei", "Hej", "Kysymys 0", "Kysymys 1", "Kysymys 2"]
            assert rejected(svc, "web") == 1

            clock.now += 45
            assert (await say(mine, session, "Kysymys 3")).status_code == 202
            assert (await say(mine, session, "Kysymys 4")).status_code == 429


async def test_an_address_over_its_limit_gets_429_for_sessions_and_messages(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    clock = Clock()
    limits = RateLimits(per_sender=100, per_ip=4, clock=clock)
    async with services(make_settings(tmp_path, nats_url, sqlite_url)) as svc:
        app = chat_app(svc, limits)
        async with client(app, address=RESIDENT) as mine, client(app, address=NEIGHBOUR) as other:
            session = await new_session(mine)
            for i in range(3):
                assert (await say(mine, session, f"Kysymys {i}")).status_code == 202
            for refused in (
                await say(mine, session, "Kysymys 3"),
                await mine.post("/api/chat/sessions", json={"language": "fi"}),
                await say(mine, "no-such-session", "x"),  # refused before the lookup
                await mine.post("/api/chat/sessions", json={"language": "xx"}),  # before 422
            ):
                assert refused.status_code == 429
                assert refused.headers["Retry-After"] == "60"
                assert refused.json()["detail"] == (
                    "Too many requests from your address: try again in 60 seconds."
                )
            assert (await say(other, await new_session(other), "Hej")).status_code == 202
            assert len(await on_bus(svc, Channel.WEB)) == 4
            assert rejected(svc, "web") == 4

            clock.now += 60
            assert (await say(mine, session, "Kysymys 3")).status_code == 202


async def test_web_chat_size_limits_422_for_long_text_413_for_an_oversized_body(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with services(
        make_settings(tmp_path, nats_url, sqlite_url, max_message_chars=100)
    ) as svc:
        app = chat_app(svc, RateLimits())
        async with client(app, address=RESIDENT) as c:
            session = await new_session(c)
            r = await say(c, session, "x" * 101)
            assert r.status_code == 422
            assert r.json()["detail"] == "The message is too long (101 characters; at most 100)."
            assert (await say(c, session, "ä" * 100)).status_code == 202

            path = f"/api/chat/sessions/{session}/messages"
            huge = json.dumps({"text": "x" * 50_000}).encode()
            declared = await c.post(
                path, content=huge, headers={"content-type": "application/json"}
            )

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
                for _ in range(100):
                    yield b"x" * 1000

            streamed = await c.post(path, content=chunks())
            for r in (declared, streamed):
                assert r.status_code == 413
                assert r.json() == {"detail": f"request body larger than {12 * 100 + 4096} bytes"}
            assert svc.metrics.rejected.labels("web", "too_large")._value.get() == 2
            assert [m.text for m in await on_bus(svc, Channel.WEB)] == ["ä" * 100]


# ---- Twilio -------------------------------------------------------------------------------


async def test_an_sms_sender_over_the_limit_is_answered_200_but_not_published(
    tmp_path: Path, nats_url: str, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    limits = RateLimits(per_sender=2, per_ip=1, clock=clock)  # per-IP: not on webhooks
    flooder, other = "+358401111111", "+358402222222"
    # One address for every request: Twilio's, shared by all its customers.
    address = ("203.0.113.9", 443)
    async with twilio_tests.gateway(tmp_path, nats_url, database_url, limits, address) as gw:
        for i in range(4):
            r = await gw.post(inbound_sms(new_sid(), flooder, f"Viesti {i}"))
            assert r.status_code == 200  # Twilio must not retry
            assert r.text == twilio_tests.TWIML
        assert (await gw.post(inbound_sms(new_sid(), other, "Hei"))).status_code == 200
        # STOP always works, also over the limit.
        assert (await gw.post(inbound_sms(new_sid(), flooder, "STOP"))).status_code == 200

        got = [(m.sender.value, m.text) for m in await gw.stored(Channel.SMS)]
        assert got == [(flooder, "Viesti 0"), (flooder, "Viesti 1"), (other, "Hei")]
        assert await gw.inbox.opt_outs.opted_out(Address(channel=Channel.SMS, value=flooder))
        assert rejected(gw.svc, "sms") == 2
        # Logged once per sender and window (the repeat at debug level), without the number.
        logged = [r for r in caplog.records if "rate_limited" in r.getMessage()]
        assert [r.levelno for r in logged if r.levelno >= logging.WARNING] == [logging.WARNING]
        assert not any("358401111111" in r.getMessage() for r in logged)

        clock.now += 60
        assert (await gw.post(inbound_sms(new_sid(), flooder, "Taas"))).status_code == 200
        assert len(await gw.stored(Channel.SMS)) == 4


# ---- Telegram -----------------------------------------------------------------------------


async def test_a_telegram_chat_over_the_limit_gets_200_but_is_not_published_webhook_mode(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    clock = Clock()
    limits = RateLimits(per_sender=2, per_ip=1, clock=clock)
    async with webhook(tmp_path, nats_url, sqlite_url, limits) as hook:
        for i in range(3):
            update = {
                "update_id": 100 + i,
                "message": private_message(4242, i, f"V {i}"),
            }
            r = await hook.post(update)
            assert r.status_code == 200 and r.json() == {}
        start = {"update_id": 103, "message": private_message(4242, 3, "/start")}
        assert (await hook.post(start)).status_code == 200
        other = {"update_id": 104, "message": private_message(5151, 1, "Hei")}
        assert (await hook.post(other)).status_code == 200
        got = [(m.sender.value, m.text) for m in await on_bus(hook.svc, Channel.TELEGRAM)]
        assert got == [("4242", "V 0"), ("4242", "V 1"), ("5151", "Hei")]
        await asyncio.sleep(0.2)  # a greeting would have gone out by now
        assert hook.fake.sent == []  # /start over the limit is not answered
        assert rejected(hook.svc, "telegram") == 2


async def test_a_telegram_chat_over_the_limit_is_passed_by_in_long_poll_mode(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    clock = Clock()
    limits = RateLimits(per_sender=2, clock=clock)
    async with (
        TelegramFake() as fake,
        services(make_settings(tmp_path, nats_url, sqlite_url)) as svc,
    ):
        for i in range(3):
            fake.queue_message(4242, f"Viesti {i}")
        fake.queue_message(4242, "/start")
        fake.queue_message(5151, "Hej", language_code="sv")
        last = fake.queue_message(6161, "/start", language_code="en")
        inbox = Inbox(svc.engine, svc.publisher, svc.metrics, limits)
        async with polling(adapter_for(fake), inbox):
            await eventually(lambda: fake.sent, what="the greeting")
            await eventually(
                lambda: _offset_past(inbox, last["update_id"]), what="the offset past every update"
            )
        got = [(m.sender.value, m.text) for m in await on_bus(svc, Channel.TELEGRAM)]
        assert got == [("4242", "Viesti 0"), ("4242", "Viesti 1"), ("5151", "Hej")]
        assert [s.chat_id for s in fake.sent] == [6161]  # 4242's /start was over the limit
        assert rejected(svc, "telegram") == 2


async def _offset_past(inbox: Inbox, update_id: int) -> bool:
    stored = await inbox.state.get("telegram:offset")
    return bool(stored and stored["offset"] > update_id)


# ---- email --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def smtp_gateway(
    tmp_path: Path, nats_url: str, sqlite_url: str, limits: RateLimits
) -> AsyncIterator[tuple[Services, int]]:
    settings = email_settings(tmp_path, nats_url, sqlite_url, smtp_port=1)  # never sends
    async with services(settings) as svc:
        adapter = email_adapter(settings)
        assert adapter is not None
        inbox = Inbox(svc.engine, svc.publisher, svc.metrics, limits)
        stopping = asyncio.Event()
        task = asyncio.create_task(adapter.receive(inbox, stopping))
        try:
            await asyncio.wait_for(adapter.smtp_listening.wait(), 5)
            assert adapter.smtp_port is not None
            yield svc, adapter.smtp_port
        finally:
            stopping.set()
            await asyncio.wait_for(task, 5)
            await adapter.aclose()


async def mail(port: int, sender: str, n: int) -> None:
    msg = question(From=sender, Message_ID=f"<q{n}.{sender}>", Subject=f"Kysymys {n}")
    msg.set_content(f"Kysymys numero {n}")
    await aiosmtplib.send(
        msg,
        hostname="127.0.0.1",
        port=port,
        start_tls=False,
        local_hostname="client.test",
        timeout=10,
        sender=sender,
        recipients=[OURS],
    )


async def test_an_email_sender_over_the_limit_gets_450_and_may_try_again_later(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    clock = Clock()
    limits = RateLimits(per_sender=2, clock=clock)
    async with smtp_gateway(tmp_path, nats_url, sqlite_url, limits) as (svc, port):
        await mail(port, "matti@example.fi", 0)
        await mail(port, "matti@example.fi", 1)
        with pytest.raises(aiosmtplib.SMTPResponseException) as e:
            await mail(port, "matti@example.fi", 2)
        assert (e.value.code, e.value.message) == (450, "4.7.1 too many messages, try again later")
        await mail(port, "maija@example.fi", 0)
        senders = [m.sender.value for m in await on_bus(svc, Channel.EMAIL)]
        assert senders == ["matti@example.fi", "matti@example.fi", "maija@example.fi"]

        clock.now += 60  # the sending server's retry gets through
        await mail(port, "matti@example.fi", 2)
        assert len(await on_bus(svc, Channel.EMAIL)) == 4
        assert rejected(svc, "email") == 1


async def test_a_connecting_address_over_the_limit_gets_450_at_mail_from(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    clock = Clock()
    limits = RateLimits(per_ip=2, clock=clock)
    async with smtp_gateway(tmp_path, nats_url, sqlite_url, limits) as (svc, port):
        await mail(port, "a@example.fi", 0)
        await mail(port, "b@example.fi", 0)
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as e:
            await mail(port, "c@example.fi", 0)  # another sender, the same address
        assert e.value.code == 450
        assert "Too many messages from your address" in e.value.message
        assert len(await on_bus(svc, Channel.EMAIL)) == 2
        clock.now += 60
        await mail(port, "c@example.fi", 0)
        assert len(await on_bus(svc, Channel.EMAIL)) == 3
