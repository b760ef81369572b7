"""Inbound email by polling an IMAP mailbox (a small real IMAP server on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from nats.errors import TimeoutError as NatsTimeoutError

from channels.email import from_settings
from channels.email.imap_poll import state_key
from channels.inbox import Inbox
from router.app import Services
from router.bus import EventPublisher
from router.embedded import EmbeddedNats
from router.events import MessageReceived
from router.subjects import Stream
from tests.fakes.imap_server import FakeImap, imap_server
from tests.integration.harness import eventually, make_settings, services

OURS = "neuvonta@kunta.example"
SUBJECT = "neuvonta.v1.message.received.email"


def mail(n: int, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Anna Andersson <anna@example.se>"
    msg["To"] = OURS
    msg["Subject"] = headers.pop("Subject", f"Fråga {n}")
    msg["Message-ID"] = f"<imap{n}@example.se>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(f"Hej, fråga nummer {n}?\n\nSkickat från min iPhone\n")
    return msg.as_bytes()


async def published(svc: Services) -> list[MessageReceived]:
    js = svc.broker.connection.jetstream()
    sub = await js.pull_subscribe(SUBJECT, stream=Stream.CONVERSATIONS.value)
    try:
        return [MessageReceived.from_json(m.data) for m in await sub.fetch(50, timeout=0.3)]
    except (TimeoutError, NatsTimeoutError):
        return []
    finally:
        await sub.unsubscribe()


@contextlib.asynccontextmanager
async def polling(svc: Services, publish_timeout: float = 5.0) -> AsyncIterator[None]:
    adapter = from_settings(svc.settings)
    assert adapter is not None
    stopping = asyncio.Event()
    publisher = EventPublisher(svc.broker.connection.jetstream(), timeout=publish_timeout)
    task = asyncio.create_task(adapter.receive(Inbox(svc.engine, publisher), stopping))
    try:
        yield
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)


def imap_settings(tmp_path: Path, nats_url: str, sqlite_url: str, fake: FakeImap, **kw: Any) -> Any:
    return make_settings(
        tmp_path,
        nats_url,
        sqlite_url,
        email_address=OURS,
        smtp_host="127.0.0.1",
        imap_host=fake.host,
        imap_port=fake.port,
        imap_ssl=False,
        imap_username=fake.user,
        imap_password=kw.pop("password", fake.password),
        imap_poll_seconds=0.1,
        **kw,
    )


async def test_new_mail_is_taken_once_and_marked_seen(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with imap_server() as fake:
        fake.deliver(mail(0), seen=True)  # read before the service started: left alone
        fake.deliver(mail(1))
        fake.deliver(mail(2, Auto_Submitted="auto-replied"))
        settings = imap_settings(tmp_path, nats_url, sqlite_url, fake)
        async with services(settings) as svc:
            key = state_key(settings)
            async with polling(svc):

                async def two_passed() -> bool:
                    return (await svc_state(svc, key)).get("uid") == 3

                await eventually(two_passed, what="the first two messages")
                items = await published(svc)
                assert [i.provider_message_id for i in items] == ["imap1@example.se"]
                assert items[0].text == "Hej, fråga nummer 1?"
                assert fake.seen() == [1, 2, 3]

                fake.deliver(mail(3))

                async def third() -> bool:
                    return len(await published(svc)) == 2

                await eventually(third, what="the later message")

            # After a restart the mailbox is not read again from the start.
            logins = fake.logins
            async with polling(svc):
                await eventually(lambda: _more_logins(fake, logins), what="another poll")
            assert [i.provider_message_id for i in await published(svc)] == [
                "imap1@example.se",
                "imap3@example.se",
            ]


async def _more_logins(fake: FakeImap, before: int) -> bool:
    return fake.logins > before + 1


async def svc_state(svc: Services, key: str) -> dict[str, Any]:
    return await Inbox(svc.engine, svc.publisher).state.get(key) or {}


async def test_a_refused_login_is_logged_without_the_password_and_polling_goes_on(
    tmp_path: Path, nats_url: str, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with imap_server() as fake:
        fake.deliver(mail(1))
        settings = imap_settings(tmp_path, nats_url, sqlite_url, fake, password="väärä-salasana")
        async with services(settings) as svc:
            with caplog.at_level(logging.WARNING, logger="channels.email"):
                async with polling(svc):

                    async def two_failures() -> bool:
                        return sum("IMAP poll" in r.getMessage() for r in caplog.records) >= 2

                    await eventually(two_failures, what="two failed polls")
            assert await published(svc) == []
            assert "väärä-salasana" not in caplog.text
            assert fake.seen() == []


async def test_a_message_the_inbox_cannot_take_stays_unseen_for_the_next_round(
    tmp_path: Path,
    nats_server: EmbeddedNats,
    nats_url: str,
    sqlite_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with imap_server() as fake:
        settings = imap_settings(tmp_path, nats_url, sqlite_url, fake)
        async with services(settings) as svc:
            nats_server.stop()
            fake.deliver(mail(1))
            with caplog.at_level(logging.WARNING, logger="channels.email"):
                async with polling(svc, publish_timeout=0.2):

                    async def two_tries() -> bool:
                        return sum("asking to retry" in r.getMessage() for r in caplog.records) >= 2

                    await eventually(two_tries, what="two tries")
            assert fake.seen() == []
            assert await svc_state(svc, state_key(settings)) == {}
