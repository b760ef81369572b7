from __future__ import annotations

from pathlib import Path

from channels.gateway import adapters_for, channel_summary
from router.settings import Settings


def settings(**kw: object) -> Settings:
    return Settings.model_validate({"data_dir": Path("var"), **kw})


def line(lines: list[str], channel: str) -> str:
    return next(x for x in lines if x.split()[0] == channel)


def test_without_credentials_only_the_web_chat_is_on_and_each_channel_says_what_to_set() -> None:
    s = settings()
    adapters = adapters_for(s)
    assert adapters == []
    lines = channel_summary(s, adapters)
    assert line(lines, "web").startswith("web       on")
    assert "off" in line(lines, "sms") and "NEUVONTA_TWILIO_ACCOUNT_SID" in line(lines, "sms")
    assert "NEUVONTA_TELEGRAM_BOT_TOKEN" in line(lines, "telegram")


def test_twilio_credentials_turn_sms_and_whatsapp_on() -> None:
    s = settings(
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="token",
        twilio_from_number="+358451234567",
        public_url="https://kunta.example",
    )
    adapters = adapters_for(s)
    lines = channel_summary(s, adapters)
    assert line(lines, "sms").startswith("sms       on")
    assert "https://kunta.example/webhooks/twilio" in line(lines, "sms")
    assert line(lines, "whatsapp").startswith("whatsapp  on")
    assert "off" in line(lines, "telegram")
