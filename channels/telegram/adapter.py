"""The Telegram channel: webhook or long-poll inbound, ``Bot.send_message`` outbound.

Webhook mode when both ``NEUVONTA_PUBLIC_URL`` and ``NEUVONTA_TELEGRAM_WEBHOOK_SECRET`` are
set (``receive`` registers ``{public_url}/webhooks/telegram`` with the secret), else long
polling (``receive`` runs ``getUpdates``; no route is mounted). The Bot is initialised
(``getMe``) once, on first use, so a Telegram outage at start-up delays nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from channels.base import Capabilities, Delivery, InboundRequest, Parsed
from channels.telegram.greeting import greeting_text
from channels.telegram.parse import Greeting, parse_update, verify_secret
from channels.telegram.poll import long_poll, register_webhook
from channels.telegram.redact import TokenRedaction
from channels.telegram.render import TelegramReply, render_reply
from channels.telegram.routes import WEBHOOK_PATH, webhook_router
from router.events import Channel, ReplyRequested
from router.settings import Settings

if TYPE_CHECKING:
    from fastapi import APIRouter

    from channels.inbox import Inbox

log = logging.getLogger(__name__)

DEFAULT_API_URL: Final = "https://api.telegram.org/bot"
MAX_BODY: Final = 1024 * 1024
# Replies whose parts were (partly) sent, so a retry sends only the missing parts.
_REMEMBERED_REPLIES: Final = 10_000
# Update ids already greeted: Telegram may deliver an update again when we answered late.
_REMEMBERED_GREETINGS: Final = 1_000


def from_settings(settings: Settings) -> TelegramAdapter | None:
    """The adapter when a bot token is configured; None (the channel is off) otherwise."""
    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
    if not token:
        return None
    secret = settings.telegram_webhook_secret
    return TelegramAdapter(
        token,
        public_url=settings.public_url,
        webhook_secret=secret.get_secret_value() if secret else None,
        api_url=settings.telegram_api_url,
    )


def api_base_url(api_url: str | None) -> str:
    """The Bot's ``base_url`` (the token is appended): accepts ``…/bot`` or a bare server
    URL such as a self-hosted Bot API server's ``http://host:8081``."""
    url = (api_url or DEFAULT_API_URL).rstrip("/")
    return url if url.endswith("/bot") or "{token}" in url else f"{url}/bot"


class TelegramAdapter:
    def __init__(
        self,
        token: str,
        *,
        public_url: str | None = None,
        webhook_secret: str | None = None,
        api_url: str | None = None,
        poll_timeout: int = 25,
        retry_delay: float = 1.0,
        max_retry_delay: float = 60.0,
        max_body: int = MAX_BODY,
    ) -> None:
        self.public_url = public_url.rstrip("/") if public_url else None
        self.webhook_secret = webhook_secret or None
        self.webhook_mode = bool(self.public_url and self.webhook_secret)
        self.poll_timeout = poll_timeout
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.max_body = max_body
        # The Bot API URL holds the token, and httpx logs every request's URL at INFO.
        self._redaction = TokenRedaction(token)
        self._redaction.install()
        self.bot = Bot(token, base_url=api_base_url(api_url))
        self._init_lock = asyncio.Lock()
        self._initialized = False
        self._progress: OrderedDict[str, list[str]] = OrderedDict()
        self._greeted: OrderedDict[int, None] = OrderedDict()

    @property
    def channels(self) -> tuple[Channel, ...]:
        return (Channel.TELEGRAM,)

    @property
    def capabilities(self) -> Capabilities:
        # Any length: long answers go out in several messages.
        return Capabilities(structured_sources=False, max_chars=None, delivered_on_store=False)

    @property
    def webhook_url(self) -> str | None:
        return f"{self.public_url}{WEBHOOK_PATH}" if self.webhook_mode else None

    # ---- pure parts ----

    def verify(self, request: InboundRequest) -> None:
        verify_secret(request, self.webhook_secret)

    def parse(self, request: InboundRequest) -> Parsed:
        """The update's items; ``/start`` and ``/help`` come back ignored (greeted by the
        webhook route or the long poll, which see ``parse_update``'s ``greeting``)."""
        return parse_update(request.body).parsed

    def render(self, reply: ReplyRequested) -> TelegramReply:
        return render_reply(reply, self.public_url)

    # ---- I/O ----

    async def ready(self) -> Bot:
        """The Bot, initialised (``getMe``) on first use; raises ``TelegramError`` when
        Telegram cannot be reached or refuses the token."""
        async with self._init_lock:
            if not self._initialized:
                await self.bot.initialize()
                self._initialized = True
        return self.bot

    async def send(self, reply: ReplyRequested) -> Delivery:
        """One attempt. Parts a previous attempt delivered are not sent again (within this
        process), so a retry after part 2 of 3 failed sends parts 2 and 3 only."""
        if reply.channel is not Channel.TELEGRAM or reply.recipient.channel is not Channel.TELEGRAM:
            return Delivery(ok=False, error=f"not a Telegram reply ({reply.recipient})")
        rendered = self.render(reply)
        if not rendered.parts:
            return Delivery(ok=False, error="nothing to send: the reply is empty")
        sent = self._progress.get(reply.message_id, [])
        if len(sent) >= len(rendered.parts):
            return Delivery(ok=True, provider_message_id=sent[0])
        try:
            bot = await self.ready()
        except Exception as e:
            return Delivery(ok=False, error=f"bot not ready: {self.describe(e)}", retryable=True)
        for index in range(len(sent), len(rendered.parts)):
            try:
                message = await bot.send_message(rendered.chat_id, rendered.parts[index])
            except Exception as e:
                return self._failed(e, index, len(rendered.parts))
            sent.append(f"{message.chat.id}:{message.message_id}")
            self._remember(reply.message_id, sent)
        return Delivery(ok=True, provider_message_id=sent[0])

    def _remember(self, message_id: str, sent: list[str]) -> None:
        self._progress[message_id] = sent
        self._progress.move_to_end(message_id)
        while len(self._progress) > _REMEMBERED_REPLIES:
            self._progress.popitem(last=False)

    def _failed(self, error: Exception, index: int, total: int) -> Delivery:
        retryable = _retryable(error)
        reason = self.describe(error)
        if total > 1:
            earlier = f"; parts 1-{index} were delivered" if index else ""
            reason = f"part {index + 1} of {total}: {reason}{earlier}"
        if not isinstance(error, TelegramError):
            log.warning("telegram: sending failed unexpectedly", exc_info=error)
        return Delivery(ok=False, error=reason, retryable=retryable)

    def describe(self, error: BaseException) -> str:
        """An error as the resident's ticket and the log show it, without the token."""
        match error:
            case Forbidden() if "blocked" in error.message.lower():
                text = "the resident has blocked the bot"
            case Forbidden() | BadRequest() | ChatMigrated():
                text = f"refused by Telegram: {error}"
            case RetryAfter():
                # str(): reading ``retry_after`` warns about its future type on each access.
                text = f"rate limited by Telegram: {error}"
            case InvalidToken():
                text = "Telegram rejected the bot token (NEUVONTA_TELEGRAM_BOT_TOKEN)"
            case TimedOut():
                text = f"timed out (the message may have arrived): {error}"
            case NetworkError():
                text = f"network or server trouble: {error}"
            case _:
                text = f"{type(error).__name__}: {error}"
        return self._redaction.redact(text)

    async def greet(self, greeting: Greeting) -> bool:
        """Answer ``/start`` or ``/help``; False (logged) when it could not be sent. A
        greeting is not worth a retry queue: the resident sees nothing and writes again."""
        if greeting.update_id in self._greeted:
            return True
        try:
            bot = await self.ready()
            await bot.send_message(greeting.chat_id, greeting_text(greeting.language))
        except Exception as e:
            log.warning("telegram: could not send the greeting: %s", self.describe(e))
            return False
        self._greeted[greeting.update_id] = None
        while len(self._greeted) > _REMEMBERED_GREETINGS:
            self._greeted.popitem(last=False)
        return True

    def webhooks(self, inbox: Inbox) -> APIRouter | None:
        if not self.webhook_mode:
            return None
        return webhook_router(self, inbox)

    async def receive(self, inbox: Inbox, stopping: asyncio.Event) -> None:
        if self.webhook_mode:
            await register_webhook(self, stopping)
        else:
            await long_poll(self, inbox, stopping)

    async def aclose(self) -> None:
        try:
            # Also after a failed getMe: the HTTP clients are open by then.
            await self.bot.shutdown()
        finally:
            self._initialized = False
            self._redaction.remove()


def _retryable(error: Exception) -> bool:
    """Network trouble, 5xx, 429 and a refused token (an operator can fix it while the
    reply waits) are worth another try; a blocked bot or an unknown chat is final."""
    if isinstance(error, Forbidden | BadRequest | ChatMigrated):
        return False
    if isinstance(error, RetryAfter | InvalidToken | NetworkError):
        return True
    # Other refusals (a conflict, an unknown method) will not change by themselves; any
    # other exception is a transport surprise the library did not wrap.
    return not isinstance(error, TelegramError)
