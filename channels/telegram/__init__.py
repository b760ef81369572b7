"""The Telegram channel (python-telegram-bot): webhook or long poll in, Bot API out."""

from channels.telegram.adapter import TelegramAdapter, from_settings

__all__ = ["TelegramAdapter", "from_settings"]
