"""Twilio's webhooks on the real bus and database: signed forms in, events and rows out."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from channels.inbox import Inbox
from channels.ratelimit import RateLimits
from channels.sms import TwilioAdapter
from router.app import Services
from router.events import Address, Channel, MessageReceived, utcnow
from router.subjects import Stream, message_received
from router.tables import ConversationRow, MessageRow
from tests.fakes.twilio_server import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    inbound_sms,
    new_sid,
    sign,
    signed_form,
    status_callback,
)
from tests.integration.harness import eventually, make_settings, rows, services

PUBLIC = "https://neuvonta.kunta.example"
NUMBER = "+358401234567"
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@dataclass
class Gateway:
    svc: Services
    inbox: Inbox
    http: httpx.AsyncClient

    async def post(
        self, form: dict[str, str], path: str = "/webhooks/twilio", query: str = ""
    ) -> httpx.Response:
        """What Twilio does: sign for the public URL, post to this server (behind a proxy:
        the Host here is not the public one)."""
        url = f"{PUBLIC}{path}" + (f"?{query}" if query else "")
        body, headers = signed_form(url, form)
        return await self.http.post(
            path + (f"?{query}" if query else ""), content=body, headers=headers
        )

    async def stored(self, channel: Channel) -> list[MessageReceived]:
        return await on_bus(self.svc, channel)


async def on_bus(svc: Services, channel: Channel) -> list[MessageReceived]:
    """The resident messages JetStream keeps on ``channel``'s subject."""
    js = svc.broker.connection.jetstream()
    info = await js.stream_info(Stream.CONVERSATIONS.value)
    subject = message_received(channel)
    found = []
    for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
        msg = await js.get_msg(Stream.CONVERSATIONS.value, seq)
        if msg.subject == subject and msg.data is not None:
            found.append(MessageReceived.from_json(msg.data))
    return found


@contextlib.asynccontextmanager
async def gateway(
    tmp_path: Path,
    nats_url: str,
    sqlite_url: str,
    limits: RateLimits | None = None,
    client: tuple[str, int] = ("127.0.0.1", 123),
) -> AsyncIterator[Gateway]:
    """The Twilio routes on a real bus and database; ``client``: the address requests come
    from."""
    settings = make_settings(
        tmp_path,
        nats_url,
        sqlite_url,
        public_url=PUBLIC,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number="+358451234567",
    )
    async with services(settings) as svc:
        twilio = TwilioAdapter.from_settings(settings)
        assert twilio is not None
        inbox = Inbox(svc.engine, svc.publisher, svc.metrics, limits)
        app = FastAPI()
        app.include_router(twilio.webhooks(inbox))
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5:8080") as http:
            yield Gateway(svc, inbox, http)
        await twilio.aclose()


async def test_a_signed_sms_is_one_message_on_the_bus(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        sid = new_sid()
        r = await gw.post(inbound_sms(sid, NUMBER, "Milloin kirjasto on auki?"))
        assert r.status_code == 200
        assert r.text == TWIML
        assert r.headers["content-type"].startswith("application/xml")
        (message,) = await gw.stored(Channel.SMS)
        assert message.provider_message_id == sid
        assert message.sender == Address(channel=Channel.SMS, value=NUMBER)
        assert message.text == "Milloin kirjasto on auki?"


async def test_the_same_message_sid_twice_is_stored_once(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        form = inbound_sms(new_sid(), NUMBER, "Hei")
        assert (await gw.post(form)).status_code == 200
        assert (await gw.post(form)).status_code == 200  # Twilio retried
        assert len(await gw.stored(Channel.SMS)) == 1


async def test_a_signed_query_string_is_honoured(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        r = await gw.post(inbound_sms(new_sid(), NUMBER, "Hei"), query="kunta=espoo")
        assert r.status_code == 200
        assert len(await gw.stored(Channel.SMS)) == 1


async def test_whatsapp_messages_are_on_whatsapp(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        form = inbound_sms(new_sid(), f"whatsapp:{NUMBER}", "Hej", to="whatsapp:+358451234567")
        assert (await gw.post(form)).status_code == 200
        (message,) = await gw.stored(Channel.WHATSAPP)
        assert message.channel is Channel.WHATSAPP
        assert message.sender == Address(channel=Channel.WHATSAPP, value=NUMBER)
        assert await gw.stored(Channel.SMS) == []


async def test_forged_and_unsigned_requests_are_refused_and_logged_without_secrets(
    tmp_path: Path, nats_url: str, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        form = inbound_sms(new_sid(), NUMBER, "Hei")
        body, headers = signed_form(f"{PUBLIC}/webhooks/twilio", form)
        forged = {**headers, "X-Twilio-Signature": sign(f"{PUBLIC}/webhooks/twilio", form, "x")}
        unsigned = {k: v for k, v in headers.items() if k != "X-Twilio-Signature"}
        host_signed = {
            **headers,
            "X-Twilio-Signature": sign("http://10.0.0.5:8080/webhooks/twilio", form),
        }
        with caplog.at_level(logging.WARNING):
            for h, reason in [
                (forged, "invalid X-Twilio-Signature"),
                (unsigned, "missing X-Twilio-Signature"),
                (host_signed, "invalid X-Twilio-Signature"),
            ]:
                r = await gw.http.post("/webhooks/twilio", content=body, headers=h)
                assert r.status_code == 403
                assert r.text == reason
        assert await gw.stored(Channel.SMS) == []
        assert "bad_signature" in caplog.text
        assert AUTH_TOKEN not in caplog.text


async def test_malformed_or_huge_forms_get_a_clear_rejection(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        r = await gw.post({"MessageSid": new_sid(), "Body": "Hei"})
        assert (r.status_code, r.text) == (400, "missing From")
        # Not a form at all, yet signed (what Twilio's check reads of it).
        url = f"{PUBLIC}/webhooks/twilio"
        garbage = b"MessageSid=SM1&&From"
        headers = {"X-Twilio-Signature": sign(url, [("MessageSid", "SM1"), ("From", "")])}
        r = await gw.http.post("/webhooks/twilio", content=garbage, headers=headers)
        assert r.status_code == 400
        assert r.text.startswith("bad form data")
        r = await gw.http.post("/webhooks/twilio", content=b"x" * (65 * 1024))
        assert r.status_code == 413
        assert await gw.stored(Channel.SMS) == []


async def test_stop_stores_an_opt_out_and_start_clears_it(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        resident = Address(channel=Channel.SMS, value=NUMBER)
        assert (await gw.post(inbound_sms(new_sid(), NUMBER, "STOP"))).status_code == 200
        assert await gw.inbox.opt_outs.opted_out(resident)
        assert await gw.stored(Channel.SMS) == []  # not a message for the AI
        assert (await gw.post(inbound_sms(new_sid(), NUMBER, "START"))).status_code == 200
        assert not await gw.inbox.opt_outs.opted_out(resident)


async def _stored_reply(svc: Services, provider_id: str, channel: Channel) -> None:
    async with svc.engine.begin() as conn:
        await conn.execute(
            insert(ConversationRow.__table__).values(  # type: ignore[attr-defined]
                id="c1",
                thread_key=f"{channel.value}:{NUMBER}",
                channel=channel.value,
                address=f"{channel.value}:{NUMBER}",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
        await conn.execute(
            insert(MessageRow.__table__).values(  # type: ignore[attr-defined]
                id="r1",
                conversation_id="c1",
                role="ai",
                channel=channel.value,
                text="Kirjasto on auki arkisin.",
                sources=[],
                status="sent",
                provider_message_id=provider_id,
                created_at=utcnow(),
            )
        )


async def test_status_callbacks_move_a_reply_forward_only(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        sid = new_sid()
        await _stored_reply(gw.svc, sid, Channel.SMS)
        path = "/webhooks/twilio/status"

        async def status() -> str:
            return str((await rows(gw.svc, "message", id="r1"))[0]["status"])

        r = await gw.post(status_callback(sid, "delivered"), path=path)
        assert (r.status_code, r.text) == (200, TWIML)
        assert await status() == "delivered"
        # An older "sent" arriving late leaves it delivered.
        assert (await gw.post(status_callback(sid, "sent"), path=path)).status_code == 200
        assert await status() == "delivered"
        # An intermediate status is taken and ignored.
        assert (await gw.post(status_callback(sid, "sending"), path=path)).status_code == 200
        assert await status() == "delivered"


async def test_an_undelivered_whatsapp_reply_records_why(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        sid = new_sid()
        await _stored_reply(gw.svc, sid, Channel.WHATSAPP)
        form = status_callback(sid, "undelivered", to=f"whatsapp:{NUMBER}", ErrorCode="63016")
        assert (await gw.post(form, path="/webhooks/twilio/status")).status_code == 200

        async def recorded() -> bool:
            (row,) = await rows(gw.svc, "message", id="r1")
            return bool(row["status"] == "undelivered")

        await eventually(recorded, timeout=2, what="the undelivered status")
        (row,) = await rows(gw.svc, "message", id="r1")
        assert row["delivery_error"] == "Twilio error 63016: outside the WhatsApp 24-hour window"


async def test_a_bus_outage_answers_503_so_twilio_retries(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    async with gateway(tmp_path, nats_url, sqlite_url) as gw:
        # A publisher whose stream is gone: publishing fails.
        js = gw.svc.broker.connection.jetstream()
        await js.delete_stream(Stream.CONVERSATIONS.value)
        r = await gw.post(inbound_sms(new_sid(), NUMBER, "Hei"))
        assert (r.status_code, r.text) == (503, "temporarily unavailable")
