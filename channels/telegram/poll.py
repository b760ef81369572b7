"""The adapter's own inbound work: registering the webhook, or the ``getUpdates`` long poll.

Long polling acknowledges an update to Telegram only by asking for a later offset, so the
offset moves (in ``inbox.state`` first, then in the next ``getUpdates``) only after the
batch was accepted: a crash before that gets the same updates again (deduplicated by their
provider ids), and a restart resumes from the stored offset instead of replaying.

Messages from a chat over the per-sender rate limit are passed by like ignored updates
(the offset moves on: fetching them again would only refuse them again), logged and
counted as rejected (``rate_limited``), as in webhook mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from telegram import Update
from telegram.error import BadRequest, Conflict, InvalidToken

from channels.base import Item, Rejected
from channels.ratelimit import Admission
from channels.telegram.parse import Greeting, parse_update
from channels.telegram.routes import greeting_allowed

if TYPE_CHECKING:
    from channels.inbox import Inbox
    from channels.telegram.adapter import TelegramAdapter

log = logging.getLogger(__name__)

OFFSET_KEY: Final = "telegram:offset"
# Only new messages: edits, reactions and group events are nothing the service answers.
ALLOWED_UPDATES: Final = ("message",)
T = TypeVar("T")


async def register_webhook(adapter: TelegramAdapter, stopping: asyncio.Event) -> None:
    """``setWebhook`` once, retried with backoff until it works or ``stopping`` is set."""
    url = adapter.webhook_url
    assert url is not None and adapter.webhook_secret is not None  # webhook mode
    delay = adapter.retry_delay
    while not stopping.is_set():
        try:
            await _until(_set_webhook(adapter, url, adapter.webhook_secret), stopping)
        except Exception as e:
            # A refused URL, secret or token needs an operator; the rest is an outage.
            configuration = isinstance(e, BadRequest | InvalidToken)
            log.log(
                logging.ERROR if configuration else logging.WARNING,
                "telegram: could not set the webhook to %s (%s); retrying in %.0f s",
                url,
                adapter.describe(e),
                delay,
            )
            if await _pause(stopping, delay):
                return
            delay = min(delay * 2, adapter.max_retry_delay)
        else:
            if not stopping.is_set():
                log.info("telegram: webhook set to %s", url)
            return


async def _set_webhook(adapter: TelegramAdapter, url: str, secret: str) -> None:
    bot = await adapter.ready()
    await bot.set_webhook(url=url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)


async def long_poll(adapter: TelegramAdapter, inbox: Inbox, stopping: asyncio.Event) -> None:
    poller = _Poller(adapter, inbox, stopping)
    await poller.run()


class _Poller:
    def __init__(self, adapter: TelegramAdapter, inbox: Inbox, stopping: asyncio.Event) -> None:
        self.adapter = adapter
        self.inbox = inbox
        self.stopping = stopping
        self.delay = adapter.retry_delay

    async def run(self) -> None:
        offset = await self._start()
        while not self.stopping.is_set():
            try:
                updates = await _until(
                    self.adapter.bot.get_updates(
                        offset=offset,
                        timeout=self.adapter.poll_timeout,
                        allowed_updates=ALLOWED_UPDATES,
                    ),
                    self.stopping,
                )
                if updates is None:
                    return
                offset = await self._take(updates, offset)
            except Exception as e:
                if not await self._trouble("getUpdates", e):
                    return
            else:
                self.delay = self.adapter.retry_delay

    async def _start(self) -> int | None:
        """Initialise, remove any webhook (``getUpdates`` refuses to run beside one) and read
        the stored offset; retried until it works or ``stopping`` is set."""
        while not self.stopping.is_set():
            try:
                return await _until(self._prepare(), self.stopping)
            except Exception as e:
                if not await self._trouble("start", e):
                    return None
        return None

    async def _prepare(self) -> int | None:
        bot = await self.adapter.ready()
        await bot.delete_webhook()
        stored = await self.inbox.state.get(OFFSET_KEY)
        self.delay = self.adapter.retry_delay
        # Update ids are per bot: another bot's offset would skip or replay updates.
        if stored and stored.get("bot_id") == bot.id and isinstance(stored.get("offset"), int):
            offset: int = stored["offset"]
            log.info("telegram: long polling from offset %d", offset)
            return offset
        log.info("telegram: long polling (no stored offset)")
        return None

    async def _take(self, updates: tuple[Update, ...], offset: int | None) -> int | None:
        """Accept a batch, then store the next offset; the greetings go out last."""
        if not updates:
            return offset
        admitted: list[Admission] = []
        greetings: list[Greeting] = []
        for update in updates:
            try:
                parsed = parse_update(_json(update.to_dict()))
            except Rejected as e:
                self.inbox.rejected("telegram", "malformed", f"update {update.update_id}: {e}")
                continue
            # In order: each update counts against its chat's limit as it came.
            admitted.append(self.inbox.admit(parsed.parsed))
            if parsed.greeting and greeting_allowed(self.inbox, parsed.greeting):
                greetings.append(parsed.greeting)
        next_offset = max(u.update_id for u in updates) + 1
        items: list[Item] = [item for a in admitted for item in a.items]
        try:
            if items:
                await self.inbox.accept(items)
            await self.inbox.state.set(
                OFFSET_KEY, {"offset": next_offset, "bot_id": self.adapter.bot.id}
            )
        except BaseException:
            for a in admitted:  # the batch is fetched again
                self.inbox.refund(a)
            raise
        for greeting in greetings:
            await self.adapter.greet(greeting)
        return next_offset

    async def _trouble(self, what: str, error: Exception) -> bool:
        """Log and wait before the next try; False when ``stopping`` was set meanwhile."""
        level = logging.ERROR if isinstance(error, InvalidToken | Conflict) else logging.WARNING
        log.log(
            level,
            "telegram: long poll %s failed (%s); retrying in %.0f s",
            what,
            self.adapter.describe(error),
            self.delay,
        )
        stopped = await _pause(self.stopping, self.delay)
        self.delay = min(self.delay * 2, self.adapter.max_retry_delay)
        return not stopped


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, default=str).encode()


async def _pause(stopping: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stopping``; True when stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
    return stopping.is_set()


async def _until(work: Awaitable[T], stopping: asyncio.Event) -> T | None:
    """``work``'s result, or None as soon as ``stopping`` is set (``work`` is cancelled: an
    unfinished ``getUpdates`` acknowledges nothing, so nothing is lost)."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if task.cancelled():
        return None
    return task.result()
