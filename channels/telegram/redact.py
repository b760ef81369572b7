"""Keep the bot token out of the logs.

The Bot API puts the token in every request's path, and httpx logs each request's URL at
INFO (python-telegram-bot logs it at DEBUG). The filter rewrites those records while an
adapter is open.
"""

from __future__ import annotations

import logging
from typing import Final

# The loggers that print request URLs.
LOGGERS: Final = (
    "httpx",
    "telegram.Bot",
    "telegram.request.BaseRequest",
    "telegram.request.HTTPXRequest",
)
MASK: Final = "<token>"


class TokenRedaction(logging.Filter):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def redact(self, text: str) -> str:
        return text.replace(self.token, MASK) if self.token else text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token and self.token in message:
            record.msg = self.redact(message)
            record.args = None
        return True

    def install(self) -> None:
        for name in LOGGERS:
            logging.getLogger(name).addFilter(self)

    def remove(self) -> None:
        for name in LOGGERS:
            logging.getLogger(name).removeFilter(self)
