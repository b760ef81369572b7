"""A real ``neuvonta serve`` (offline agent, demo knowledge base) with SMS, Telegram and
email on, against fake Twilio and Telegram APIs and an SMTP relay on loopback: what a
resident on a phone or in a mail program sees."""

from __future__ import annotations

import asyncio
import re
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiosmtplib
import httpx

from router import phrases
from tests.e2e.conftest import start_server, stop_server
from tests.fakes.smtp_relay import smtp_relay
from tests.fakes.telegram_server import TelegramFake
from tests.fakes.twilio_server import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FakeTwilio,
    inbound_sms,
    new_sid,
    signed_form,
)
from tests.fault.cluster import free_port, until

RESIDENT = "+358401234567"
OURS = "+358451234567"
CHAT = 777001


async def test_serve_says_which_channels_are_on_and_answers_sms_telegram_and_email(
    tmp_path: Path,
) -> None:
    async with FakeTwilio() as twilio, TelegramFake() as telegram, smtp_relay() as relay:
        port, smtp_port = free_port(), free_port()
        public = f"http://127.0.0.1:{port}"
        env = {
            "NEUVONTA_PUBLIC_URL": public,
            "NEUVONTA_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "NEUVONTA_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "NEUVONTA_TWILIO_FROM_NUMBER": OURS,
            "NEUVONTA_TWILIO_API_URL": twilio.url,
            "NEUVONTA_TELEGRAM_BOT_TOKEN": telegram.token,
            "NEUVONTA_TELEGRAM_API_URL": telegram.api_url,
            "NEUVONTA_EMAIL_ADDRESS": "neuvonta@kunta.example",
            "NEUVONTA_SMTP_LISTEN_PORT": str(smtp_port),
            "NEUVONTA_SMTP_HOST": relay.host,
            "NEUVONTA_SMTP_PORT": str(relay.port),
            "NEUVONTA_SMTP_STARTTLS": "false",
        }
        server = await asyncio.to_thread(
            start_server, tmp_path / "var", "--port", str(port), env=env
        )
        try:
            log = server.log()
            assert re.search(r"sms\s+on: Twilio webhook " + re.escape(public), log), log
            assert re.search(r"telegram\s+on: polling", log), log
            assert re.search(rf"email\s+on: SMTP on port {smtp_port}", log), log
            assert AUTH_TOKEN not in log and telegram.token not in log

            form = inbound_sms(new_sid(), RESIDENT, "Mitä kirjastossa voi tehdä?", to=OURS)
            body, headers = signed_form(f"{public}/webhooks/twilio", form)
            async with httpx.AsyncClient(base_url=public, timeout=10) as http:
                r = await http.post("/webhooks/twilio", content=body, headers=headers)
                assert r.status_code == 200 and "<Response/>" in r.text
                forged = await http.post(
                    "/webhooks/twilio", content=body, headers={**headers, "X-Twilio-Signature": "x"}
                )
                assert forged.status_code == 403
            await until(lambda: twilio.messages, timeout=30, what="the SMS answer")
            sms = twilio.messages[0]
            assert sms["To"] == RESIDENT
            assert phrases.disclosure("fi").split(":")[0] in sms["Body"]
            assert f"{public}/kb/" in sms["Body"], "a source link the phone can open"

            telegram.queue_message(CHAT, "I want to talk to a person", language_code="en")
            await until(lambda: telegram.sent, timeout=30, what="the Telegram handoff notice")
            notice = telegram.sent[0].text
            assert re.search(r"NV-[0-9A-Z]{4}-[0-9A-Z]{4}", notice), notice

            question = EmailMessage()
            question["From"] = "maija@example.fi"
            question["To"] = "neuvonta@kunta.example"
            question["Subject"] = "Kirjasto"
            question["Message-ID"] = make_msgid(domain="example.fi")
            question.set_content("Hur lånar jag böcker på biblioteket?")
            await aiosmtplib.send(question, hostname="127.0.0.1", port=smtp_port, start_tls=False)
            (answer,) = await relay.wait_for(1, timeout=30)
            assert answer.rcpt_tos == ["maija@example.fi"]
            assert answer.message["In-Reply-To"] == question["Message-ID"]
            plain = answer.message.get_body(preferencelist=("plain",))
            assert plain is not None and phrases.disclosure("sv") in plain.get_content()
        finally:
            await asyncio.to_thread(stop_server, server)
