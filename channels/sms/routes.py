"""The webhooks Twilio calls: incoming messages and status callbacks.

Each answers at once: empty TwiML (no auto-reply; the answer goes out later through the
REST API) when the request was taken, 403 when unsigned or forged, 400 when malformed, 413
when too big, and 503 when it could not be stored, so that Twilio tries again.

A message from a sender over the per-sender rate limit (``Inbox.admit``) is answered like
any other (empty TwiML, 200: a retry would only be refused again) but not published;
it is logged and counted as rejected (``rate_limited``). The resident is not told by SMS:
each message costs money, and a reply to an auto-responder could start a loop. There is no
per-IP limit here: the requests are signed by Twilio (a forged one costs one HMAC to
refuse), and Twilio sends every customer's webhooks from the same shared addresses.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from channels.base import InboundRequest, Rejected
from channels.sms import parse
from channels.sms.signature import MESSAGE_PATH, STATUS_PATH
from channels.webhooks import read_capped_body

if TYPE_CHECKING:
    from channels.inbox import Inbox
    from channels.sms.adapter import TwilioAdapter

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
# Twilio's forms are a few kilobytes at most.
MAX_BODY = 64 * 1024


def channel_hint(body: bytes) -> str:
    """The channel a request says it is for (only to label what is logged and counted)."""
    for name, value in parse.signed_fields(body[:4096]):
        if name in ("From", "To") and value.lower().startswith(parse.WHATSAPP_PREFIX):
            return "whatsapp"
    return "sms"


def twilio_router(adapter: TwilioAdapter, inbox: Inbox, max_body: int = MAX_BODY) -> APIRouter:
    router = APIRouter()

    async def handle(request: Request, path: str) -> Response:
        try:
            body = await read_capped_body(request, max_body)
        except Rejected as e:
            inbox.rejected("sms", "too_large", e.reason)
            return PlainTextResponse(e.reason, status_code=e.status)
        label = channel_hint(body)
        inbound = InboundRequest(
            body=body,
            headers={k.lower(): v for k, v in request.headers.items()},
            url=adapter.signature_url(path, request.url.query),
        )
        try:
            adapter.verify(inbound)
        except Rejected as e:
            inbox.rejected(label, "bad_signature", e.reason)
            return PlainTextResponse(e.reason, status_code=e.status)
        try:
            parsed = adapter.parse(inbound)
        except Rejected as e:
            inbox.rejected(label, "malformed", e.reason)
            return PlainTextResponse(e.reason, status_code=e.status)
        if parsed.ignored:
            log.info("%s: nothing to do (%s)", label, parsed.ignored)
        admitted = inbox.admit(parsed)
        try:
            await inbox.accept(admitted.items)
        except Exception:
            inbox.refund(admitted)
            log.exception("%s: could not store an inbound request; Twilio will retry", label)
            return PlainTextResponse("temporarily unavailable", status_code=503)
        return Response(EMPTY_TWIML, media_type="application/xml")

    @router.post(MESSAGE_PATH, include_in_schema=False)
    async def message(request: Request) -> Response:
        return await handle(request, MESSAGE_PATH)

    @router.post(STATUS_PATH, include_in_schema=False)
    async def status(request: Request) -> Response:
        return await handle(request, STATUS_PATH)

    return router
