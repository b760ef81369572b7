"""``POST /webhooks/telegram``: what Telegram calls in webhook mode.

The secret header is checked before the body is read, the body is size-capped, and the
answer is ``200 {}`` as soon as the update is on the bus: Telegram waits for it before
sending the chat's next update. ``503`` when the bus or database is down, so Telegram
delivers the update again later (the provider message id makes that harmless).

A chat over the per-sender rate limit (``Inbox.admit``) gets ``200`` too (a redelivery
would only be refused again) but its message is not published, and ``/start`` is not
answered; both are logged and counted as rejected (``rate_limited``). There is no per-IP
limit: the secret header authenticates Telegram, whose servers are shared by every bot.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.background import BackgroundTask

from channels.base import InboundRequest, Rejected
from channels.telegram.parse import Greeting, parse_update
from channels.webhooks import read_capped_body
from router.events import Address, Channel

if TYPE_CHECKING:
    from channels.inbox import Inbox
    from channels.telegram.adapter import TelegramAdapter

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"


def greeting_allowed(inbox: Inbox, greeting: Greeting) -> bool:
    """A ``/start`` counts against the chat's limit like a message (each costs a send)."""
    sender = Address(channel=Channel.TELEGRAM, value=str(greeting.chat_id))
    return inbox.sender_allowed(sender, "/start")


def webhook_router(adapter: TelegramAdapter, inbox: Inbox) -> APIRouter:
    router = APIRouter(tags=["channels"])

    @router.post(WEBHOOK_PATH, include_in_schema=False)
    async def telegram_webhook(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            adapter.verify(InboundRequest(body=b"", headers=headers, url=str(request.url)))
        except Rejected as e:
            inbox.rejected(CHANNEL, "bad_secret", e.reason)
            return PlainTextResponse(e.reason, status_code=e.status)
        try:
            body = await read_capped_body(request, adapter.max_body)
            update = parse_update(body)
        except Rejected as e:
            inbox.rejected(CHANNEL, "too_large" if e.status == 413 else "malformed", e.reason)
            return PlainTextResponse(e.reason, status_code=e.status)
        admitted = inbox.admit(update.parsed)
        greeting = update.greeting
        if greeting is not None and not greeting_allowed(inbox, greeting):
            greeting = None
        if admitted.items:
            try:
                await inbox.accept(admitted.items)
            except Exception:
                inbox.refund(admitted)
                log.exception("telegram: could not accept update %s", update.update_id)
                return PlainTextResponse("try again later", status_code=503)
        elif update.parsed.ignored:
            log.debug("telegram: update %s ignored: %s", update.update_id, update.parsed.ignored)
        # The greeting goes out after the answer, so Telegram is not kept waiting for it.
        task = BackgroundTask(adapter.greet, greeting) if greeting else None
        return JSONResponse({}, background=task)

    return router
