"""The Telegram adapter's configuration, greeting and pure interface (no network)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from channels.base import ChannelAdapter, InboundRequest, Rejected
from channels.telegram import TelegramAdapter, from_settings
from channels.telegram.adapter import api_base_url
from channels.telegram.greeting import greeting_text
from channels.telegram.parse import SECRET_HEADER
from channels.telegram.redact import TokenRedaction
from router.events import Channel, MessageReceived
from router.settings import Settings

TOKEN = "123456:ABC-test-token"


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings.model_validate({"data_dir": tmp_path, **kw})


async def test_the_channel_is_off_without_a_bot_token(tmp_path: Path) -> None:
    assert from_settings(settings(tmp_path)) is None
    assert from_settings(settings(tmp_path, telegram_bot_token="")) is None


async def test_webhook_mode_needs_both_the_public_url_and_the_secret(tmp_path: Path) -> None:
    both = from_settings(
        settings(
            tmp_path,
            telegram_bot_token=TOKEN,
            telegram_webhook_secret="s3cret",
            public_url="https://kunta.example/",
        )
    )
    assert both is not None
    assert both.channels == (Channel.TELEGRAM,)
    assert both.webhook_mode
    assert both.webhook_url == "https://kunta.example/webhooks/telegram"
    assert both.bot.base_url == f"https://api.telegram.org/bot{TOKEN}"
    await both.aclose()
    for kw in ({"public_url": "https://kunta.example"}, {"telegram_webhook_secret": "s3cret"}):
        polling = from_settings(settings(tmp_path, telegram_bot_token=TOKEN, **kw))
        assert polling is not None
        assert not polling.webhook_mode
        assert polling.webhook_url is None
        await polling.aclose()


def test_the_api_url_may_name_the_bot_path_or_only_the_server() -> None:
    assert api_base_url(None) == "https://api.telegram.org/bot"
    assert api_base_url("http://127.0.0.1:8081/bot") == "http://127.0.0.1:8081/bot"
    assert api_base_url("http://127.0.0.1:8081/bot/") == "http://127.0.0.1:8081/bot"
    assert api_base_url("http://127.0.0.1:8081") == "http://127.0.0.1:8081/bot"


async def test_the_adapter_verifies_and_parses_as_the_pure_functions_do() -> None:
    adapter = TelegramAdapter(TOKEN, public_url="https://kunta.example", webhook_secret="s3")
    try:
        body = json.dumps(
            {
                "update_id": 1,
                "message": {"message_id": 2, "chat": {"id": 3, "type": "private"}, "text": "Hei"},
            }
        ).encode()
        request = InboundRequest(body=body, headers={SECRET_HEADER: "s3"})
        adapter.verify(request)
        (item,) = adapter.parse(request).items
        assert isinstance(item, MessageReceived)
        assert item.provider_message_id == "3:2"
        with pytest.raises(Rejected):
            adapter.verify(InboundRequest(body=body, headers={SECRET_HEADER: "s4"}))
        start = json.dumps(
            {
                "update_id": 1,
                "message": {
                    "message_id": 2,
                    "chat": {"id": 3, "type": "private"},
                    "text": "/start",
                },
            }
        ).encode()
        assert adapter.parse(InboundRequest(body=start)).ignored == "command: greeted"
    finally:
        await adapter.aclose()


async def test_in_poll_mode_no_route_is_mounted() -> None:
    # Typed as the interface: mypy checks that the adapter implements it.
    adapter: ChannelAdapter = TelegramAdapter(TOKEN)
    try:
        assert adapter.webhooks(inbox=None) is None  # type: ignore[arg-type]
        assert adapter.capabilities.max_chars is None  # long answers are split
    finally:
        await adapter.aclose()


@pytest.mark.parametrize(
    ("language", "welcome", "person"),
    [
        ("fi", "Hei!", "ihmisen kanssa"),
        ("sv-FI", "Hej!", "människa"),
        ("en-GB", "Hello!", "talk to a person"),
    ],
)
def test_the_greeting_is_in_the_residents_language_with_the_disclosure(
    language: str, welcome: str, person: str
) -> None:
    text = greeting_text(language)
    assert text.startswith(welcome)
    assert person in text
    assert any(ai in text for ai in ("tekoäly", "AI-assistent", "AI assistant"))
    for other in {"Hei!", "Hej!", "Hello!"} - {welcome}:
        assert other not in text


@pytest.mark.parametrize("language", [None, "", "de", "ru"])
def test_an_unknown_language_gets_all_three_finnish_first(language: str | None) -> None:
    text = greeting_text(language)
    assert text.index("Hei!") < text.index("Hej!") < text.index("Hello!")
    assert len(text) < 4096


def test_the_token_is_masked_in_library_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    redaction = TokenRedaction(TOKEN)
    redaction.install()
    try:
        with caplog.at_level(logging.INFO, logger="httpx"):
            logging.getLogger("httpx").info(
                'HTTP Request: %s %s "%s"',
                "POST",
                f"https://api.telegram.org/bot{TOKEN}/getMe",
                200,
            )
    finally:
        redaction.remove()
    assert TOKEN not in caplog.text
    assert "https://api.telegram.org/bot<token>/getMe" in caplog.text
