"""Sending through the Twilio REST client to a fake Twilio on loopback."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator

import pytest

from channels.base import Delivery
from channels.sms import TwilioAdapter
from router.events import Address, Channel, ReplyRequested, Role, SourceRef
from router.settings import Settings
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

PUBLIC = "https://neuvonta.kunta.example"
FROM = "+358451234567"
NUMBER = "+358401234567"


def reply(
    text: str = "Kirjasto on auki arkisin.", channel: Channel = Channel.SMS
) -> ReplyRequested:
    return ReplyRequested(
        message_id="m1",
        channel=channel,
        recipient=Address(channel=channel, value=NUMBER),
        role=Role.AI,
        text=text,
        sources=(SourceRef(doc_id="lib", title="Kirjastopalvelut", url="/kb/lib"),),
        language="fi",
    )


def settings_for(api_url: str, token: str = AUTH_TOKEN, **kw: str) -> Settings:
    return Settings.model_validate(
        {
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": token,
            "twilio_from_number": FROM,
            "twilio_api_url": api_url,
            "public_url": PUBLIC,
            **kw,
        }
    )


@contextlib.asynccontextmanager
async def adapter_for(settings: Settings) -> AsyncIterator[TwilioAdapter]:
    twilio = TwilioAdapter.from_settings(settings)
    assert twilio is not None
    try:
        yield twilio
    finally:
        await twilio.aclose()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as server:
        yield server


async def test_a_reply_is_sent_from_our_number_with_a_status_callback(
    fake: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with adapter_for(settings_for(fake.url)) as twilio:
            delivery = await twilio.send(reply())
    assert delivery.ok
    (sent,) = fake.messages
    assert delivery.provider_message_id is not None
    assert delivery.provider_message_id.startswith("SM")
    assert sent["To"] == NUMBER
    assert sent["From"] == FROM
    assert sent["Body"] == (
        "Kirjasto on auki arkisin.\n\nLähteet:\nKirjastopalvelut: " + PUBLIC + "/kb/lib"
    )
    assert sent["StatusCallback"] == f"{PUBLIC}/webhooks/twilio/status"
    assert fake.unauthorized == 0
    assert AUTH_TOKEN not in caplog.text


async def test_whatsapp_goes_between_whatsapp_numbers(fake: FakeTwilio) -> None:
    async with adapter_for(settings_for(fake.url)) as twilio:
        assert (await twilio.send(reply("Hej 👋", Channel.WHATSAPP))).ok
    async with adapter_for(
        settings_for(fake.url, twilio_whatsapp_from="whatsapp:+358459999999")
    ) as twilio:
        assert (await twilio.send(reply("Hej", Channel.WHATSAPP))).ok
    first, second = fake.messages
    assert (first["To"], first["From"]) == (f"whatsapp:{NUMBER}", f"whatsapp:{FROM}")
    assert first["Body"].startswith("Hej 👋\n\nLähteet:")
    assert second["From"] == "whatsapp:+358459999999"


async def test_a_long_reply_is_one_message_of_at_most_four_segments(fake: FakeTwilio) -> None:
    text = "Kirjasto on auki arkisin kello 9-20 ja lauantaisin kello 10-16. " * 30
    async with adapter_for(settings_for(fake.url)) as twilio:
        assert (await twilio.send(reply(text))).ok
    (sent,) = fake.messages
    assert len(sent["Body"]) <= 4 * 153
    assert sent["Body"].endswith(f"Kirjastopalvelut: {PUBLIC}/kb/lib")


async def test_a_server_error_is_retryable_and_the_next_try_delivers_once(
    fake: FakeTwilio,
) -> None:
    fake.fail_next(1, status=500)
    async with adapter_for(settings_for(fake.url)) as twilio:
        first = await twilio.send(reply())
        assert first == Delivery(ok=False, error=first.error, retryable=True)
        assert first.error is not None and "HTTP 500" in first.error
        assert fake.messages == []
        second = await twilio.send(reply())
    assert second.ok
    assert len(fake.messages) == 1
    assert fake.calls == 2


async def test_too_many_requests_is_retryable(fake: FakeTwilio) -> None:
    fake.fail_next(1, status=429, code=20429, message="Too Many Requests")
    async with adapter_for(settings_for(fake.url)) as twilio:
        delivery = await twilio.send(reply())
    assert not delivery.ok and delivery.retryable


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (21610, "Attempt to send to unsubscribed recipient"),
        (21211, "The 'To' number +358401234567 is not a valid phone number."),
    ],
)
async def test_a_refusal_is_final_and_names_the_twilio_error(
    fake: FakeTwilio, code: int, message: str
) -> None:
    fake.fail_next(1, status=400, code=code, message=message)
    async with adapter_for(settings_for(fake.url)) as twilio:
        delivery = await twilio.send(reply())
    assert not delivery.ok
    assert not delivery.retryable
    assert delivery.error is not None
    assert f"Twilio error {code}" in delivery.error
    assert message in delivery.error


async def test_a_wrong_auth_token_is_a_final_failure_without_the_token(fake: FakeTwilio) -> None:
    async with adapter_for(settings_for(fake.url, token="wrong-token-123")) as twilio:
        delivery = await twilio.send(reply())
    assert fake.unauthorized == 1
    assert not delivery.ok and not delivery.retryable
    assert delivery.error is not None
    assert "Twilio error 20003" in delivery.error
    assert "wrong-token-123" not in delivery.error


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_api_is_retryable() -> None:
    async with adapter_for(settings_for(f"http://127.0.0.1:{_closed_port()}")) as twilio:
        delivery = await twilio.send(reply())
    assert not delivery.ok
    assert delivery.retryable
    assert delivery.error is not None and "unreachable" in delivery.error


async def test_a_hanging_api_times_out_as_retryable() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        twilio = TwilioAdapter(
            ACCOUNT_SID, AUTH_TOKEN, FROM, api_url=f"http://127.0.0.1:{port}", timeout=0.3
        )
        try:
            delivery = await twilio.send(reply())
        finally:
            await twilio.aclose()
    assert not delivery.ok and delivery.retryable
    assert delivery.error == "Twilio API unreachable: TimeoutError"


async def test_without_a_public_url_no_status_callback_is_asked(fake: FakeTwilio) -> None:
    twilio = TwilioAdapter(ACCOUNT_SID, AUTH_TOKEN, FROM, api_url=fake.url)
    try:
        assert (await twilio.send(reply())).ok
    finally:
        await twilio.aclose()
    (sent,) = fake.messages
    assert "StatusCallback" not in sent
    assert sent["Body"].endswith("Kirjastopalvelut: /kb/lib")


async def test_a_reply_for_another_channel_is_refused_without_a_call(fake: FakeTwilio) -> None:
    async with adapter_for(settings_for(fake.url)) as twilio:
        delivery = await twilio.send(reply(channel=Channel.TELEGRAM))
    assert not delivery.ok and not delivery.retryable
    assert fake.calls == 0
