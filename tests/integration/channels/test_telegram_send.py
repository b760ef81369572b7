"""Sending through python-telegram-bot's Bot to the fake Bot API (a real HTTP server)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels.telegram import TelegramAdapter
from router.events import ReplyRequested, Role, SourceRef
from tests.fakes.telegram_server import TelegramFake


@pytest.fixture
async def fake() -> AsyncIterator[TelegramFake]:
    async with TelegramFake() as server:
        yield server


@pytest.fixture
async def adapter(fake: TelegramFake) -> AsyncIterator[TelegramAdapter]:
    adapter = TelegramAdapter(fake.token, public_url="https://kunta.example", api_url=fake.api_url)
    try:
        yield adapter
    finally:
        await adapter.aclose()


def reply(text: str, message_id: str = "m1", **kw: Any) -> ReplyRequested:
    return ReplyRequested(
        message_id=message_id,
        channel="telegram",
        recipient="telegram:4242",
        role=Role.AI,
        text=text,
        **kw,
    )


async def test_an_answer_is_delivered_as_plain_text_with_its_sources(
    fake: TelegramFake, adapter: TelegramAdapter
) -> None:
    answer = reply(
        "Kirjasto on auki *arkisin*.",
        sources=(SourceRef(doc_id="lib", title="Kirjastopalvelut", url="/kb/lib"),),
        language="fi",
    )
    delivery = await adapter.send(answer)
    assert delivery.ok and not delivery.error
    (sent,) = fake.sent
    assert delivery.provider_message_id == f"4242:{sent.message_id}"
    assert sent.chat_id == 4242
    assert sent.text == (
        "Kirjasto on auki *arkisin*.\n\nLähteet:\nKirjastopalvelut: https://kunta.example/kb/lib"
    )
    assert "parse_mode" not in sent.params


async def test_the_bot_is_initialised_once(fake: TelegramFake, adapter: TelegramAdapter) -> None:
    for n in range(3):
        assert (await adapter.send(reply(f"Vastaus {n}", message_id=f"m{n}"))).ok
    assert fake.methods() == ["getMe", "sendMessage", "sendMessage", "sendMessage"]


async def test_a_server_error_is_retryable_and_the_retry_delivers_once(
    fake: TelegramFake, adapter: TelegramAdapter
) -> None:
    fake.fail_sends(1, 500)
    first = await adapter.send(reply("Kirjasto on auki arkisin."))
    assert not first.ok and first.retryable
    assert first.error == "network or server trouble: Internal Server Error"
    second = await adapter.send(reply("Kirjasto on auki arkisin."))
    assert second.ok
    assert [s.text for s in fake.sent] == ["Kirjasto on auki arkisin."]


# python-telegram-bot warns, building RetryAfter, that retry_after will become a timedelta.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_rate_limit_is_retryable(fake: TelegramFake, adapter: TelegramAdapter) -> None:
    fake.fail_sends(1, 429, "Too Many Requests: retry after 3", retry_after=3)
    delivery = await adapter.send(reply("Hei"))
    assert not delivery.ok and delivery.retryable
    assert delivery.error == "rate limited by Telegram: Flood control exceeded. Retry in 3 seconds"


async def test_a_blocked_bot_is_final(fake: TelegramFake, adapter: TelegramAdapter) -> None:
    fake.block_by_user()
    delivery = await adapter.send(reply("Hei"))
    assert delivery == type(delivery)(
        ok=False, error="the resident has blocked the bot", retryable=False
    )


async def test_an_unknown_chat_is_final(fake: TelegramFake, adapter: TelegramAdapter) -> None:
    fake.fail_sends(1, 400, "Bad Request: chat not found")
    delivery = await adapter.send(reply("Hei"))
    assert not delivery.ok and not delivery.retryable
    assert delivery.error == "refused by Telegram: Chat not found"


async def test_a_5000_character_answer_arrives_as_two_messages(
    fake: TelegramFake, adapter: TelegramAdapter
) -> None:
    text = ("Kirjaston aukioloajat vaihtelevat. " * 143).strip()
    assert len(text) > 5000
    delivery = await adapter.send(reply(text))
    assert delivery.ok
    first, second = fake.sent
    assert delivery.provider_message_id == f"4242:{first.message_id}"
    assert f"{first.text} {second.text}" == text


async def test_an_answer_of_emoji_is_split_by_telegrams_count(
    fake: TelegramFake, adapter: TelegramAdapter
) -> None:
    # 3,000 characters but 6,000 UTF-16 code units: one message would be refused as too long.
    text = "🙂" * 3000
    assert (await adapter.send(reply(text))).ok
    assert "".join(s.text for s in fake.sent) == text
    assert len(fake.sent) == 2


async def test_a_retry_after_a_later_part_failed_sends_only_the_missing_parts(
    fake: TelegramFake, adapter: TelegramAdapter
) -> None:
    text = ("Kirjaston aukioloajat vaihtelevat. " * 143).strip()
    fake.fail_sends(1, 502, "Bad Gateway", after=1)
    delivery = await adapter.send(reply(text))
    assert not delivery.ok and delivery.retryable
    assert delivery.error == (
        "part 2 of 2: network or server trouble: Bad Gateway; parts 1-1 were delivered"
    )
    assert len(fake.sent) == 1
    retried = await adapter.send(reply(text))
    assert retried.ok
    assert retried.provider_message_id == f"4242:{fake.sent[0].message_id}"
    assert len(fake.sent) == 2
    assert f"{fake.sent[0].text} {fake.sent[1].text}" == text
    # Delivered in full: another call (a redelivered request) sends nothing more.
    assert (await adapter.send(reply(text))).ok
    assert len(fake.sent) == 2


async def test_a_failed_initialisation_is_a_retryable_delivery(
    fake: TelegramFake, adapter: TelegramAdapter
) -> None:
    fake.fail_next("getMe", 1, 502, "Bad Gateway")
    delivery = await adapter.send(reply("Hei"))
    assert not delivery.ok and delivery.retryable
    assert delivery.error == "bot not ready: network or server trouble: Bad Gateway"
    assert (await adapter.send(reply("Hei"))).ok
    assert fake.methods() == ["getMe", "getMe", "sendMessage"]


async def test_a_rejected_token_is_retryable_and_never_shown(
    fake: TelegramFake, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "7000001:AAWrongTokenWrongTokenWrongToken99"
    adapter = TelegramAdapter(wrong, api_url=fake.api_url)
    try:
        with caplog.at_level(logging.DEBUG):
            delivery = await adapter.send(reply("Hei"))
    finally:
        await adapter.aclose()
    assert not delivery.ok and delivery.retryable
    assert delivery.error == (
        "bot not ready: Telegram rejected the bot token (NEUVONTA_TELEGRAM_BOT_TOKEN)"
    )
    assert wrong not in caplog.text
    assert "bot<token>/getMe" in caplog.text  # httpx's request line, masked
    assert fake.sent == []


async def test_an_unreachable_api_is_retryable() -> None:
    async with TelegramFake() as gone:
        url = gone.api_url
    adapter = TelegramAdapter("7000001:AAFakeTokenForTestsOnly_0123456789ab", api_url=url)
    try:
        delivery = await adapter.send(reply("Hei"))
    finally:
        await adapter.aclose()
    assert not delivery.ok and delivery.retryable
    assert delivery.error is not None and delivery.error.startswith("bot not ready: network")


async def test_an_empty_reply_or_another_channel_is_not_sent(
    fake: TelegramFake, adapter: TelegramAdapter
) -> None:
    empty = await adapter.send(reply("  "))
    assert (empty.ok, empty.retryable, empty.error) == (
        False,
        False,
        "nothing to send: the reply is empty",
    )
    sms = ReplyRequested(
        message_id="s", channel="sms", recipient="sms:+358401234567", role=Role.AI, text="Hei"
    )
    assert not (await adapter.send(sms)).ok
    assert fake.sent == []
