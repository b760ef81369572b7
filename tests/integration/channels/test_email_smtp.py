"""Inbound email through the adapter's own SMTP server, into JetStream (real NATS, SQLite)."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from sqlalchemy import insert

from channels.email import EmailAdapter, from_settings
from channels.email.compose import ThreadHeaders, thread_key
from channels.inbox import Inbox
from router.app import Services
from router.bus import EventPublisher
from router.embedded import EmbeddedNats
from router.events import MessageReceived, ReplyRequested, Role, utcnow
from router.settings import Settings
from router.subjects import Stream
from router.tables import ConversationRow, MessageRow
from tests.fakes.smtp_relay import FakeRelay, smtp_relay
from tests.integration.harness import make_settings, rows, services

OURS = "neuvonta@kunta.example"
SUBJECT = "neuvonta.v1.message.received.email"


@dataclass
class Gateway:
    svc: Services
    adapter: EmailAdapter
    inbox: Inbox
    relay: FakeRelay

    @property
    def port(self) -> int:
        assert self.adapter.smtp_port is not None
        return self.adapter.smtp_port

    async def mail(self, msg: EmailMessage | bytes, **kw: Any) -> None:
        kw.setdefault("sender", "matti@example.fi")
        kw.setdefault("recipients", [OURS])
        await aiosmtplib.send(
            msg,
            hostname="127.0.0.1",
            port=self.port,
            start_tls=False,
            local_hostname="client.test",
            timeout=10,
            **kw,
        )

    async def published(self, expect: int, wait: float = 0.5) -> list[MessageReceived]:
        """Every email MessageReceived in the stream (waits for ``expect`` of them)."""
        js = self.svc.broker.connection.jetstream()
        sub = await js.pull_subscribe(SUBJECT, stream=Stream.CONVERSATIONS.value)
        got: list[MessageReceived] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while loop.time() < deadline:
                try:
                    msgs = await sub.fetch(50, timeout=wait)
                except (TimeoutError, NatsTimeoutError):
                    msgs = []
                got.extend(MessageReceived.from_json(m.data) for m in msgs)
                if len(got) >= expect and not msgs:
                    break
        finally:
            await sub.unsubscribe()
        return got


def email_settings(tmp_path: Path, nats_url: str, sqlite_url: str, **kw: Any) -> Settings:
    return make_settings(
        tmp_path,
        nats_url,
        sqlite_url,
        email_address=OURS,
        smtp_listen_port=0,
        smtp_host="127.0.0.1",
        smtp_starttls=False,
        email_max_bytes=16 * 1024,
        **kw,
    )


@contextlib.asynccontextmanager
async def gateway(
    tmp_path: Path, nats_url: str, sqlite_url: str, publish_timeout: float = 5.0
) -> AsyncIterator[Gateway]:
    async with (
        smtp_relay() as relay,
        services(email_settings(tmp_path, nats_url, sqlite_url, smtp_port=relay.port)) as svc,
    ):
        adapter = from_settings(svc.settings)
        assert adapter is not None
        js = svc.broker.connection.jetstream()
        inbox = Inbox(svc.engine, EventPublisher(js, timeout=publish_timeout))
        stopping = asyncio.Event()
        task = asyncio.create_task(adapter.receive(inbox, stopping))
        try:
            await asyncio.wait_for(adapter.smtp_listening.wait(), 5)
            yield Gateway(svc, adapter, inbox, relay)
        finally:
            stopping.set()
            await asyncio.wait_for(task, 5)
            await adapter.aclose()


def question(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Matti Meikäläinen <Matti@Example.fi>")
    msg["To"] = OURS
    msg["Subject"] = headers.pop("Subject", "Kirjaston aukioloajat")
    msg["Message-ID"] = headers.pop("Message_ID", "<q1@example.fi>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def test_the_channel_is_off_without_an_address_or_a_relay(tmp_path: Path) -> None:
    base: dict[str, Any] = {"data_dir": tmp_path, "kb_seed": []}
    assert from_settings(Settings.model_validate(base)) is None
    assert from_settings(Settings.model_validate({**base, "email_address": OURS})) is None
    on = from_settings(Settings.model_validate({**base, "email_address": OURS, "smtp_host": "x"}))
    assert on is not None
    assert on.channels == (on.channels[0],)
    assert on.channels[0].value == "email"


async def test_a_mail_arrives_as_one_message_with_clean_text_and_attachments(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        msg = question()
        msg.set_content(
            "Hei,\n\nmilloin kirjasto on auki juhannuksena?\n\nTerveisin\nMatti\n\n"
            "Lähetetty iPhonesta\n\n"
            "ma 1.6.2024 klo 10.00 Kunta <neuvonta@kunta.example> kirjoitti:\n> Hyvä asukas\n"
        )
        msg.add_alternative("<p>Hei, milloin kirjasto on auki?</p>", subtype="html")
        msg.add_attachment(b"x" * 1234, maintype="application", subtype="pdf", filename="liite.pdf")
        await gw.mail(msg)
        (item,) = await gw.published(1)
        assert str(item.sender) == "email:matti@example.fi"
        assert item.text == "Hei,\n\nmilloin kirjasto on auki juhannuksena?\n\nTerveisin\nMatti"
        assert item.full_text is not None
        assert "> Hyvä asukas" in item.full_text
        assert [(a.filename, a.content_type, a.size) for a in item.attachments] == [
            ("liite.pdf", "application/pdf", 1234)
        ]
        assert item.thread == "q1@example.fi"
        assert item.provider_message_id == "q1@example.fi"
        assert item.metadata["subject"] == "Kirjaston aukioloajat"
        stored = ThreadHeaders.from_state(await gw.inbox.state.get(thread_key("q1@example.fi")))
        assert stored == ThreadHeaders("q1@example.fi", (), "Kirjaston aukioloajat")


async def test_the_same_message_id_twice_is_one_message(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        msg = question()
        msg.set_content("Hei, kysymys")
        await gw.mail(msg)
        await gw.mail(msg)  # the sender's server retried after a lost 250
        assert len(await gw.published(1)) == 1


async def test_a_reply_in_the_thread_stays_in_the_thread_and_is_answered_in_it(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        first = question()
        first.set_content("Milloin kirjasto on auki?")
        await gw.mail(first)
        again = question(
            Message_ID="<q2@example.fi>",
            In_Reply_To="<q1@example.fi>",
            Subject="Re: Kirjaston aukioloajat",
        )
        again.set_content("Entä lauantaisin?\n\nOn Sat, 1 Jun 2024 Matti <m@x.fi> wrote:\n> vanha")
        await gw.mail(again)
        items = await gw.published(2)
        assert [i.thread for i in items] == ["q1@example.fi", "q1@example.fi"]
        assert items[1].text == "Entä lauantaisin?"

        # The answer goes back into that thread, with the case number in the subject.
        reply = ReplyRequested(
            message_id="r1",
            channel=items[1].channel,
            recipient=items[1].sender,
            role=Role.AI,
            text="Lauantaisin 10–16.",
            thread=items[1].thread,
            case_number="NV-7K4Q-X2M9",
            language="fi",
        )
        delivery = await gw.adapter.send(reply)
        assert delivery.ok, delivery.error
        (got,) = await gw.relay.wait_for(1)
        assert got.rcpt_tos == ["matti@example.fi"]
        assert got.message["In-Reply-To"] == "<q2@example.fi>"
        assert got.message["References"].split() == ["<q1@example.fi>", "<q2@example.fi>"]
        assert got.message["Subject"] == "Re: Kirjaston aukioloajat [NV-7K4Q-X2M9]"
        assert delivery.provider_message_id == "r1.reply@kunta.example"


@pytest.mark.parametrize(
    ("headers", "sender"),
    [
        ({"Auto-Submitted": "auto-replied", "Subject": "Automaattinen vastaus: x"}, None),
        ({"From": "MAILER-DAEMON@mx.example.fi"}, ""),  # a bounce: MAIL FROM:<>
        ({"List-Id": "<uutiset.lists.example>", "Precedence": "list"}, None),
        ({"From": OURS}, None),
    ],
)
async def test_loop_mail_is_taken_and_never_published(
    tmp_path: Path, nats_url: str, sqlite_url: str, headers: dict[str, str], sender: str | None
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        msg = question(**headers)
        msg.set_content("Olen lomalla.")
        errors, response = await aiosmtplib.send(
            msg,
            hostname="127.0.0.1",
            port=gw.port,
            start_tls=False,
            local_hostname="client.test",
            recipients=[OURS],
            sender="matti@example.fi" if sender is None else sender,
        )
        assert errors == {}
        assert response.startswith("OK")  # 250: nothing for the sender to retry
        assert await gw.published(0) == []


async def test_an_oversize_mail_is_refused_with_552(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        msg = question()
        msg.set_content("iso liite\n" * 3000)
        with pytest.raises(aiosmtplib.SMTPResponseException) as e:
            await gw.mail(msg)
        assert e.value.code == 552
        assert await gw.published(0) == []


async def test_mail_for_another_address_is_refused_with_550(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        msg = question()
        msg.set_content("Hei")
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as e:
            await gw.mail(msg, recipients=["someone@elsewhere.example"])
        assert [r.code for r in e.value.recipients] == [550]


async def test_broken_mime_is_taken_best_effort(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    """Mail whose structure is broken is read for what text it has (250), not refused."""
    raw = (
        b"From: matti@example.fi\r\nTo: neuvonta@kunta.example\r\nMessage-ID: <broken@x.fi>\r\n"
        b"Subject: =?x-unknown?q?=E4?= rikki\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="never"\r\n\r\n'
        b"--wrong\r\nContent-Type: text/plain; charset=bogus\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nT!!!\xff\xfe\r\n"
        + "Missä on jäteasema?\r\n".encode()
    )
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        await gw.mail(raw)
        (item,) = await gw.published(1)
        assert "jäteasema" in item.text
        assert item.provider_message_id == "broken@x.fi"


async def test_a_mail_with_nothing_to_read_is_refused_with_the_reason(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        with pytest.raises(aiosmtplib.SMTPDataError) as e:
            await gw.mail(b"From: matti@example.fi\r\nMessage-ID: <empty@x.fi>\r\n\r\n\r\n")
        assert e.value.code == 550
        assert "no text" in e.value.message


async def test_when_the_bus_is_down_the_sender_is_asked_to_retry(
    tmp_path: Path, nats_server: EmbeddedNats, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url, publish_timeout=0.5) as gw:
        nats_server.stop()
        msg = question()
        msg.set_content("Hei")
        with pytest.raises(aiosmtplib.SMTPDataError) as e:
            await gw.mail(msg)
        assert e.value.code == 451


async def test_a_bounce_of_a_sent_reply_marks_the_reply_undelivered(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        delivery = await gw.adapter.send(
            ReplyRequested(
                message_id="r9",
                channel="email",
                recipient="email:nobody@example.fi",
                role=Role.AI,
                text="Vastaus",
                thread="q1@example.fi",
            )
        )
        assert delivery.ok
        async with gw.svc.engine.begin() as conn:  # the reply as the delivery worker records it
            await conn.execute(
                insert(ConversationRow.__table__).values(  # type: ignore[attr-defined]
                    id="c1",
                    thread_key="email:nobody@example.fi",
                    channel="email",
                    address="x",
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
            await conn.execute(
                insert(MessageRow.__table__).values(  # type: ignore[attr-defined]
                    id="r9",
                    conversation_id="c1",
                    role="ai",
                    channel="email",
                    text="Vastaus",
                    sources=[],
                    status="sent",
                    provider_message_id=delivery.provider_message_id,
                    created_at=utcnow(),
                )
            )
        report = (
            (
                "From: Mail Delivery System <MAILER-DAEMON@mx.example.fi>\r\n"
                f"To: {OURS}\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
                'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
                "--b\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n"
                "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
                "Final-Recipient: rfc822; nobody@example.fi\r\n"
                "Action: failed\r\nStatus: 5.1.1\r\n\r\n"
                "--b\r\nContent-Type: message/rfc822\r\n\r\n"
            ).encode()
            + gw.relay.received[0].raw
            + b"\r\n--b--\r\n"
        )
        # From the null sender, as bounces come (aiosmtplib takes that only with a message).
        await gw.mail(email.message_from_bytes(report, policy=email.policy.default), sender="")
        (row,) = await rows(gw.svc, "message", id="r9")
        assert row["status"] == "undelivered"
        assert "5.1.1" in row["delivery_error"]
        assert await gw.published(0) == []
