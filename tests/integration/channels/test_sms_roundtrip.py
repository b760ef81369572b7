"""SMS and WhatsApp end to end: a signed Twilio webhook in, the router, and the reply out
through the gateway's delivery consumer to a fake Twilio API on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from channels.delivery import FINAL
from router.phrases import disclosure
from tests.fakes.twilio_server import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FakeTwilio,
    inbound_sms,
    new_sid,
    signed_form,
    status_callback,
)
from tests.integration.channels.roundtrip import System, running
from tests.integration.harness import answering, eventually, make_settings, rows

PUBLIC = "https://neuvonta.kunta.example"
OURS = "+358451234567"
RESIDENT = "+358401234567"


@contextlib.asynccontextmanager
async def sms_system(
    tmp_path: Path, nats_url: str, database_url: str, **kw: Any
) -> AsyncIterator[tuple[System, FakeTwilio]]:
    async with FakeTwilio() as twilio:
        settings = make_settings(
            tmp_path,
            nats_url,
            database_url,
            public_url=PUBLIC,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_from_number=OURS,
            twilio_api_url=twilio.url,
            delivery_backoff=0.2,
            **kw,
        )
        async with running(settings, answering()) as system:
            yield system, twilio


async def post(system: System, form: dict[str, str], path: str = "/webhooks/twilio") -> None:
    body, headers = signed_form(PUBLIC + path, form)
    r = await system.http.post(path, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert "<Response/>" in r.text


async def sent(twilio: FakeTwilio, n: int) -> None:
    async def check() -> bool:
        return len(twilio.messages) >= n

    await eventually(check, what=f"{n} messages at Twilio")


async def test_a_question_by_sms_gets_the_ai_answer_by_sms_and_its_receipt_is_recorded(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with sms_system(tmp_path, nats_url, database_url) as (system, twilio):
        await post(system, inbound_sms(new_sid(), RESIDENT, "Milloin kirjasto on auki?"))
        await sent(twilio, 1)
        (message,) = twilio.messages
        assert message["To"] == RESIDENT and message["From"] == OURS
        assert "Kirjasto on auki arkisin." in message["Body"]
        # The AI Act disclosure, and the source as a link a phone can open.
        assert disclosure("fi").split(":")[0] in message["Body"]
        assert "https://kunta.example/kirjasto" in message["Body"]
        assert message["StatusCallback"] == f"{PUBLIC}/webhooks/twilio/status"

        (reply,) = await system.replies()
        await eventually(lambda: _status(system, reply["id"], "sent"), what="status sent")
        (stored,) = await rows(system.svc, "message", id=reply["id"])
        sid = stored["provider_message_id"]
        assert sid and sid.startswith("SM")
        await post(system, status_callback(sid, "delivered"), "/webhooks/twilio/status")
        assert await _status(system, reply["id"], "delivered")


async def test_a_handoff_by_sms_and_the_agents_reply_from_the_console_arrive_by_sms(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with sms_system(tmp_path, nats_url, database_url) as (system, twilio):
        await post(system, inbound_sms(new_sid(), RESIDENT, "Haluan puhua ihmisen kanssa"))
        await sent(twilio, 1)
        (ticket,) = await system.tickets()
        assert ticket["case_number"] in twilio.messages[0]["Body"]

        staff = await system.staff()
        try:
            r = await staff.get(f"/api/tickets/{ticket['id']}")
            assert r.status_code == 200, r.text
            assert r.json()["channel"] == "sms"
            assert (await staff.post(f"/api/tickets/{ticket['id']}/claim")).status_code == 200
            r = await staff.post(
                f"/api/tickets/{ticket['id']}/reply", json={"text": "Hei, autan mielelläni."}
            )
            assert r.status_code == 202, r.text
            await sent(twilio, 2)
            assert twilio.messages[1]["To"] == RESIDENT
            assert "Hei, autan mielelläni." in twilio.messages[1]["Body"]
            message_id = r.json()["message_id"]
            await eventually(lambda: _status(system, message_id, "sent"), what="status sent")
            detail = (await staff.get(f"/api/tickets/{ticket['id']}")).json()
            (agent_reply,) = [m for m in detail["transcript"] if m["role"] == "agent"]
            assert agent_reply["status"] == "sent"
        finally:
            await staff.aclose()


async def test_whatsapp_is_answered_on_whatsapp(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with sms_system(tmp_path, nats_url, database_url) as (system, twilio):
        form = inbound_sms(
            new_sid(), f"whatsapp:{RESIDENT}", "Milloin kirjasto on auki?", to=f"whatsapp:{OURS}"
        )
        await post(system, form)
        await sent(twilio, 1)
        assert twilio.messages[0]["To"] == f"whatsapp:{RESIDENT}"
        assert twilio.messages[0]["From"] == f"whatsapp:{OURS}"


async def test_the_same_message_twice_gets_one_answer(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with sms_system(tmp_path, nats_url, database_url) as (system, twilio):
        form = inbound_sms(new_sid(), RESIDENT, "Milloin kirjasto on auki?")
        await post(system, form)
        await post(system, form)
        await sent(twilio, 1)
        await eventually(lambda: _all_final(system), what="the reply settled")
        assert len(twilio.messages) == 1
        assert len(await rows(system.svc, "message", role="resident")) == 1


async def test_a_provider_error_then_success_delivers_the_reply_once(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with sms_system(tmp_path, nats_url, database_url) as (system, twilio):
        twilio.fail_next(1, status=500)
        await post(system, inbound_sms(new_sid(), RESIDENT, "Milloin kirjasto on auki?"))
        await sent(twilio, 1)
        (reply,) = await system.replies()
        await eventually(lambda: _status(system, reply["id"], "sent"), what="status sent")
        assert twilio.calls == 2 and len(twilio.messages) == 1
        (stored,) = await rows(system.svc, "message", id=reply["id"])
        assert stored["attempts"] == 2


async def test_a_reply_that_cannot_be_delivered_reaches_a_person(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with sms_system(tmp_path, nats_url, database_url) as (system, twilio):
        twilio.fail_next(1, status=400, code=21211, message="Invalid 'To' Phone Number")
        await post(system, inbound_sms(new_sid(), RESIDENT, "Milloin kirjasto on auki?"))

        async def ticket_opened() -> bool:
            # The ticket is opened first; the reply is marked failed right after.
            replies = await system.replies()
            return bool(await system.tickets()) and [m["status"] for m in replies] == ["failed"]

        await eventually(ticket_opened, what="a ticket for the undelivered reply")
        (ticket,) = await system.tickets()
        assert ticket["reason"] == "delivery_failed"
        (reply,) = await system.replies()
        assert reply["status"] == "failed" and "21211" in reply["delivery_error"]
        assert await rows(system.svc, "dead_letter")
        staff = await system.staff()
        try:
            detail = (await staff.get(f"/api/tickets/{ticket['id']}")).json()
        finally:
            await staff.aclose()
        (shown,) = [m for m in detail["transcript"] if m["role"] == "ai"]
        assert shown["status"] == "failed" and "21211" in shown["delivery_error"]
        assert any(e["kind"] == "delivery_failed" for e in detail["timeline"])


async def test_after_stop_nothing_is_sent_until_start(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with sms_system(tmp_path, nats_url, database_url) as (system, twilio):
        await post(system, inbound_sms(new_sid(), RESIDENT, "STOP"))
        await post(system, inbound_sms(new_sid(), RESIDENT, "Milloin kirjasto on auki?"))

        async def suppressed() -> bool:
            return any(m["status"] == "suppressed" for m in await system.replies())

        await eventually(suppressed, what="the reply held back")
        assert twilio.messages == []
        await post(system, inbound_sms(new_sid(), RESIDENT, "START"))
        await post(system, inbound_sms(new_sid(), RESIDENT, "Entä sunnuntaina?"))
        await sent(twilio, 1)


async def _status(system: System, message_id: str, status: str) -> bool:
    stored = await rows(system.svc, "message", id=message_id)
    return bool(stored) and stored[0]["status"] == status


async def _all_final(system: System) -> bool:
    replies = await system.replies()
    return bool(replies) and all(m["status"] in FINAL for m in replies)


_ = httpx  # the System's clients are httpx clients


async def test_one_ticket_holds_the_transcript_across_channels_and_the_reply_follows_the_resident(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with sms_system(tmp_path, nats_url, database_url) as (system, twilio):
        await post(system, inbound_sms(new_sid(), RESIDENT, "Haluan puhua ihmisen kanssa"))
        await sent(twilio, 1)
        whatsapp = inbound_sms(
            new_sid(), f"whatsapp:{RESIDENT}", "Kirjoitan nyt WhatsAppista", to=f"whatsapp:{OURS}"
        )
        await post(system, whatsapp)

        async def both_in() -> bool:
            return len(await rows(system.svc, "message", role="resident")) == 2

        await eventually(both_in, what="the WhatsApp message stored")
        (ticket,) = await system.tickets()
        staff = await system.staff()
        try:
            detail = (await staff.get(f"/api/tickets/{ticket['id']}")).json()
            resident = [
                (m["channel"], m["text"]) for m in detail["transcript"] if m["role"] == "resident"
            ]
            assert resident == [
                ("sms", "Haluan puhua ihmisen kanssa"),
                ("whatsapp", "Kirjoitan nyt WhatsAppista"),
            ]
            assert detail["channel"] == "whatsapp"
            r = await staff.post(f"/api/tickets/{ticket['id']}/reply", json={"text": "Selvä!"})
            assert r.status_code == 202, r.text
        finally:
            await staff.aclose()
        await sent(twilio, 2)
        assert twilio.messages[-1]["To"] == f"whatsapp:{RESIDENT}"


async def test_a_provider_that_keeps_failing_is_tried_the_set_number_of_times_then_a_person_sees_it(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with sms_system(tmp_path, nats_url, database_url, delivery_attempts=3) as (
        system,
        twilio,
    ):
        twilio.fail_next(10, status=503)
        await post(system, inbound_sms(new_sid(), RESIDENT, "Milloin kirjasto on auki?"))

        async def ticket_opened() -> bool:
            # The ticket is opened first; the reply is marked failed right after.
            replies = await system.replies()
            return bool(await system.tickets()) and [m["status"] for m in replies] == ["failed"]

        await eventually(ticket_opened, what="a ticket after the last try")
        assert twilio.calls == 3 and twilio.messages == []
        (reply,) = await system.replies()
        assert reply["status"] == "failed" and reply["attempts"] == 3
        (dead,) = await rows(system.svc, "dead_letter")
        assert "after 3 tries" in dead["error"]
