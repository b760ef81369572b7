"""Outbound email: one attempt through a real SMTP relay on loopback (aiosmtpd)."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from channels.email import EmailAdapter
from channels.email.compose import ThreadHeaders, thread_key
from channels.inbox import ChannelState
from router.db import create_engine, create_schema
from router.events import ReplyRequested, Role, SourceRef
from router.settings import Settings
from tests.fakes.smtp_relay import FakeRelay, smtp_relay

OURS = "neuvonta@kunta.example"


def reply(**kw: Any) -> ReplyRequested:
    values: dict[str, Any] = {
        "message_id": "5f1e",
        "channel": "email",
        "recipient": "email:matti@example.fi",
        "role": Role.AI,
        "text": "Kirjasto on auki arkisin 9–20.",
        "sources": (SourceRef(doc_id="lib", title="Kirjastopalvelut", url="/kb/lib"),),
        "thread": "q1@example.fi",
        "case_number": "NV-7K4Q-X2M9",
        "language": "fi",
    }
    values.update(kw)
    return ReplyRequested.model_validate(values)


def settings_for(tmp_path: Path, port: int, **kw: Any) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": tmp_path,
            "kb_seed": [],
            "email_address": OURS,
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "public_url": "https://neuvonta.kunta.example",
            **kw,
        }
    )


@contextlib.asynccontextmanager
async def adapter_and_relay(tmp_path: Path) -> AsyncIterator[tuple[EmailAdapter, FakeRelay]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'neuvonta.db'}")
    await create_schema(engine)
    state = ChannelState(engine)
    await state.set(
        thread_key("q1@example.fi"),
        ThreadHeaders("q2@example.fi", ("q1@example.fi",), "Kirjaston aukioloajat").to_state(),
    )
    try:
        async with smtp_relay() as relay:
            adapter = EmailAdapter(settings_for(tmp_path, relay.port), state=state)
            yield adapter, relay
            await adapter.aclose()
    finally:
        await engine.dispose()


async def test_a_reply_arrives_threaded_marked_and_in_both_forms(tmp_path: Path) -> None:
    async with adapter_and_relay(tmp_path) as (adapter, relay):
        delivery = await adapter.send(reply())
        assert delivery.ok, delivery.error
        (got,) = await relay.wait_for(1)
        msg = got.message
        assert got.mail_from == OURS
        assert got.rcpt_tos == ["matti@example.fi"]
        assert msg["From"] == OURS
        assert msg["Subject"] == "Re: Kirjaston aukioloajat [NV-7K4Q-X2M9]"
        assert msg["In-Reply-To"] == "<q2@example.fi>"
        assert msg["References"].split() == ["<q1@example.fi>", "<q2@example.fi>"]
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg["Message-ID"] == f"<{delivery.provider_message_id}>"
        assert msg["Content-Language"] == "fi"
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        assert plain is not None
        assert html is not None
        assert plain.get_content().replace("\r\n", "\n") == (
            "Kirjasto on auki arkisin 9–20.\n\n"
            "Lähteet:\nKirjastopalvelut: https://neuvonta.kunta.example/kb/lib\n"
        )
        assert '<a href="https://neuvonta.kunta.example/kb/lib">Kirjastopalvelut</a>' in (
            html.get_content()
        )


async def test_an_agent_s_reply_is_not_marked_auto_submitted(tmp_path: Path) -> None:
    async with adapter_and_relay(tmp_path) as (adapter, relay):
        assert (await adapter.send(reply(role=Role.AGENT))).ok
        (got,) = await relay.wait_for(1)
        assert got.message["Auto-Submitted"] is None
        assert got.message["In-Reply-To"] == "<q2@example.fi>"


@pytest.mark.parametrize("at", ["data", "rcpt"])
async def test_a_temporary_refusal_is_retryable_and_the_next_try_gets_through(
    tmp_path: Path, at: Any
) -> None:
    async with adapter_and_relay(tmp_path) as (adapter, relay):
        relay.fail_next(1, 451, at=at)
        first = await adapter.send(reply())
        assert not first.ok
        assert first.retryable
        assert first.error is not None
        assert "451" in first.error
        again = await adapter.send(reply())
        assert again.ok
        assert len(await relay.wait_for(1)) == 1


@pytest.mark.parametrize("at", ["data", "rcpt"])
async def test_a_refused_recipient_is_not_retryable(tmp_path: Path, at: Any) -> None:
    async with adapter_and_relay(tmp_path) as (adapter, relay):
        relay.fail_next(1, 550, at=at)
        delivery = await adapter.send(reply())
        assert not delivery.ok
        assert not delivery.retryable
        assert delivery.error is not None
        assert "550" in delivery.error
        assert relay.received == []


async def test_an_unreachable_relay_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    adapter = EmailAdapter(settings_for(tmp_path, port))
    delivery = await adapter.send(reply())
    assert not delivery.ok
    assert delivery.retryable
    assert delivery.error is not None
    assert "unreachable" in delivery.error


async def test_a_reply_for_another_channel_is_not_sent(tmp_path: Path) -> None:
    async with adapter_and_relay(tmp_path) as (adapter, relay):
        delivery = await adapter.send(reply(recipient="sms:+358401234567"))
        assert not delivery.ok
        assert not delivery.retryable
        assert relay.received == []


async def test_without_thread_state_the_reply_is_threaded_by_its_root(tmp_path: Path) -> None:
    async with smtp_relay() as relay:
        adapter = EmailAdapter(settings_for(tmp_path, relay.port))
        assert (await adapter.send(reply(case_number=None, language="sv"))).ok
        (got,) = await relay.wait_for(1)
        assert got.message["In-Reply-To"] == "<q1@example.fi>"
        assert got.message["Subject"] == "Svar på ditt meddelande"


async def test_the_relay_login_is_used_and_its_password_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with smtp_relay(login=("kunta", "hyvä-salasana")) as relay:
        good = settings_for(
            tmp_path, relay.port, smtp_username="kunta", smtp_password="hyvä-salasana"
        )
        with caplog.at_level(logging.DEBUG):
            assert (await EmailAdapter(good).send(reply())).ok
            assert relay.logins == ["kunta"]
            bad = settings_for(tmp_path, relay.port, smtp_username="kunta", smtp_password="väärä")
            refused = await EmailAdapter(bad).send(reply())
        assert not refused.ok
        assert not refused.retryable  # a wrong password stays wrong
        assert refused.error is not None
        assert "535" in refused.error
        assert "hyvä-salasana" not in caplog.text
        assert "väärä" not in caplog.text
        assert "väärä" not in refused.error
