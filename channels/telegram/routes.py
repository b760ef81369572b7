"""``POST /webhooks/telegram``: what Telegram calls in webhook mode.

The secret header is checked before the body is read, the body is size-capped, and the
answer is ``200 {}`` as soon as the update is on the bus: Telegram waits for it before
sending the chat's next update. ``503`` when the bus or database is down, so Telegram
delivers the update again later (the provider message id makes that harmless).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.background import BackgroundTask

from channels.base import InboundRequest, Rejected
from channels.telegram.parse import parse_update
from channels.webhooks import read_capped_body

if TYPE_CHECKING:
    from channels.inbox import Inbox
    from channels.telegram.adapter import TelegramAdapter

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"


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
        if update.parsed.items:
            try:
                await inbox.accept(update.parsed)
            except Exception:
                log.exception("telegram: could not accept update %s", update.update_id)
                return PlainTextResponse("try again later", status_code=503)
        elif update.parsed.ignored:
            log.debug("telegram: update %s ignored: %s", update.update_id, update.parsed.ignored)
        # The greeting goes out after the answer, so Telegram is not kept waiting for it.
        task = BackgroundTask(adapter.greet, update.greeting) if update.greeting else None
        return JSONResponse({}, background=task)

    return router
