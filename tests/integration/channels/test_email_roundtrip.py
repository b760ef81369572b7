"""Email end to end: a mail to the gateway's SMTP server, the router, and the reply out
through the delivery consumer to a relay (aiosmtpd) on loopback, in the same thread."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib

from channels.email import EmailAdapter
from tests.fakes.smtp_relay import FakeRelay, smtp_relay
from tests.integration.channels.roundtrip import System, running
from tests.integration.harness import answering, eventually, make_settings, rows

OURS = "neuvonta@kunta.example"
RESIDENT = "maija.meikalainen@example.fi"


@contextlib.asynccontextmanager
async def email_system(
    tmp_path: Path, nats_url: str, database_url: str, **kw: Any
) -> AsyncIterator[tuple[System, FakeRelay, int]]:
    async with smtp_relay() as relay:
        settings = make_settings(
            tmp_path,
            nats_url,
            database_url,
            public_url="https://kunta.example",
            email_address=OURS,
            smtp_host=relay.host,
            smtp_port=relay.port,
            smtp_starttls=False,
            smtp_listen_port=0,
            delivery_backoff=0.2,
            **kw,
        )
        async with running(settings, answering()) as system:
            (adapter,) = [a for a in system.gateway.adapters if isinstance(a, EmailAdapter)]
            await eventually(_listening(adapter), what="the SMTP server")
            assert adapter.smtp_port is not None
            yield system, relay, adapter.smtp_port


def _listening(adapter: EmailAdapter) -> Any:
    async def check() -> bool:
        return adapter.smtp_listening.is_set()

    return check


def mail(text: str, *, subject: str = "Kirjaston aukioloajat", **headers: str) -> EmailMessage:
    m = EmailMessage()
    m["From"] = f"Maija Meikäläinen <{RESIDENT}>"
    m["To"] = OURS
    m["Subject"] = subject
    m["Message-ID"] = make_msgid(domain="example.fi")
    for name, value in headers.items():
        m[name.replace("_", "-")] = value
    m.set_content(text)
    return m


async def deliver(port: int, message: EmailMessage) -> None:
    await aiosmtplib.send(message, hostname="127.0.0.1", port=port, start_tls=False, timeout=10)


async def test_an_email_question_is_answered_by_email_in_its_thread(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with email_system(tmp_path, nats_url, database_url) as (system, relay, port):
        question = mail(
            "Milloin kirjasto on auki?\n\nTerveisin\nMaija\n\n"
            "-- \nMaija Meikäläinen\np. 040 123 4567"
        )
        await deliver(port, question)
        (answer,) = await relay.wait_for(1, timeout=15)
        reply = answer.message
        assert answer.rcpt_tos == [RESIDENT]
        assert reply["In-Reply-To"] == question["Message-ID"]
        assert question["Message-ID"] in reply["References"]
        assert reply["Subject"] == "Re: Kirjaston aukioloajat"
        assert reply["Auto-Submitted"] == "auto-replied"
        plain = reply.get_body(preferencelist=("plain",))
        html = reply.get_body(preferencelist=("html",))
        assert plain is not None and html is not None
        assert "Kirjasto on auki arkisin." in plain.get_content()
        assert "https://kunta.example/kirjasto" in html.get_content()
        # The AI read the question without the signature; staff keep the whole mail.
        (stored,) = await rows(system.svc, "message", role="resident")
        assert "040 123 4567" not in stored["text"]
        assert "040 123 4567" in stored["full_text"]


async def test_a_handoff_by_email_and_the_agents_reply_carry_the_case_number(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with email_system(tmp_path, nats_url, database_url) as (system, relay, port):
        await deliver(port, mail("Haluan puhua ihmisen kanssa laskustani."))
        (notice,) = await relay.wait_for(1, timeout=15)
        (ticket,) = await system.tickets()
        assert ticket["case_number"] in notice.message["Subject"]
        staff = await system.staff()
        try:
            r = await staff.post(
                f"/api/tickets/{ticket['id']}/reply", json={"text": "Hei Maija, katsotaan asiaa."}
            )
            assert r.status_code == 202, r.text
        finally:
            await staff.aclose()
        received = await relay.wait_for(2, timeout=15)
        reply = received[1].message
        assert ticket["case_number"] in reply["Subject"]
        assert reply["In-Reply-To"] == notice.message["In-Reply-To"]
        # A person's reply is ordinary mail: auto-responders may answer it.
        assert reply["Auto-Submitted"] is None
        body = reply.get_body(preferencelist=("plain",))
        assert body is not None and "katsotaan asiaa" in body.get_content()


async def test_auto_replies_are_never_answered_and_a_relay_hiccup_is_retried_once(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    async with email_system(tmp_path, nats_url, database_url) as (system, relay, port):
        await deliver(
            port,
            mail(
                "Olen lomalla.",
                subject="Automaattinen vastaus: Re: asia",
                Auto_Submitted="auto-replied",
            ),
        )
        relay.fail_next(1, 451)
        await deliver(port, mail("Milloin kirjasto on auki?"))
        (answer,) = await relay.wait_for(1, timeout=15)
        assert "Kirjasto on auki" in str(answer.message.get_body(preferencelist=("plain",)))
        assert len(await rows(system.svc, "message", role="resident")) == 1

        async def sent() -> bool:
            replies = await system.replies()
            return len(replies) == 1 and replies[0]["status"] == "sent"

        await eventually(sent, what="the reply recorded as sent")
        assert (await system.replies())[0]["attempts"] == 2
        assert len(relay.received) == 1
