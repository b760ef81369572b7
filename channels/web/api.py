"""The web chat channel: a JSON API, live updates over SSE, and the chat page.

Abuse limits (``channels.ratelimit``; off unless ``limits`` is given): opening a session
and posting a message count against the client address's per-IP limit, and a message that
would be queued against its chat session's per-sender limit; over either, ``429`` with the
reason in ``detail`` and ``Retry-After`` (seconds). Request bodies are capped (``413``)
before they are read whole, and the text at ``max_chars`` (``422``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, ValidationError
from sse_starlette import EventSourceResponse
from starlette.routing import Route

from channels.base import Rejected
from channels.inbox import count_rejected
from channels.ratelimit import RateLimits, Verdict, pseudonym
from channels.web.hot import HotRoutes
from channels.web.hub import Hub
from channels.webhooks import read_capped_body
from router.bus import EventPublisher
from router.conversations import Conversations, MessageView
from router.events import Address, Channel, MessageReceived, ReplyRequested
from router.metrics import Metrics

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
_MESSAGE_ID_NAMESPACE = uuid.UUID("5e0f3c55-8f3e-4a43-9a52-2a1c3f6e8d10")


class NewSession(BaseModel):
    language: Literal["fi", "sv", "en"] | None = None


class SessionCreated(BaseModel):
    session_id: str


class NewMessage(BaseModel):
    text: str = Field(description="What the resident wrote")
    client_message_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = Field(
        None, description="The browser's id for this message; a retry with it is stored once"
    )


class MessageAccepted(BaseModel):
    message_id: str


def web_message_id(dedup_key: str) -> str:
    """The same client message id always maps to the same stored message id."""
    return uuid.uuid5(_MESSAGE_ID_NAMESPACE, dedup_key).hex


class SessionCache:
    """Known session → conversation ids, so accepting a message needs no database read."""

    def __init__(self, conversations: Conversations, size: int = 50_000) -> None:
        self.conversations = conversations
        self.size = size
        self._known: OrderedDict[str, str] = OrderedDict()

    def remember(self, session_id: str, conversation_id: str) -> None:
        self._known[session_id] = conversation_id
        self._known.move_to_end(session_id)
        while len(self._known) > self.size:
            self._known.popitem(last=False)

    async def conversation(self, session_id: str) -> str | None:
        if (cid := self._known.get(session_id)) is not None:
            return cid
        cid = await self.conversations.by_thread(
            str(Address(channel=Channel.WEB, value=session_id))
        )
        if cid is not None:
            self.remember(session_id, cid)
        return cid


def message_body(raw: bytes, content_type: str | None) -> NewMessage:
    """The request body as FastAPI reads a body model: JSON unless a content type says
    otherwise (then the bytes, which fail validation), and its errors worded as FastAPI's
    (``RequestValidationError``: 422 with the same ``detail``)."""
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    value: Any = raw
    if content_type is None or _is_json(content_type):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as e:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", e.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": e.msg},
                    }
                ]
            ) from None
    try:
        return NewMessage.model_validate(value, from_attributes=True)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in errors]
        ) from None


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def max_body_bytes(max_chars: int) -> int:
    """The largest request body a valid message can need: every character written as a
    JSON escaped surrogate pair (12 bytes), and room for the other fields."""
    return 12 * max_chars + 4096


async def body_within(request: Request, limit: int, refused: Callable[[], None]) -> bytes:
    """The body, read at most ``limit`` bytes far: a bigger one is refused with 413
    (``refused`` is called to count it) before it is in memory whole."""
    try:
        return await read_capped_body(request, limit)
    except Rejected as e:
        refused()
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, e.reason) from None


def capped_route(limit: int, refused: Callable[[], None]) -> type[APIRoute]:
    """Routes whose request body is read at most ``limit`` bytes far: a bigger one is
    refused with 413 (``refused`` is called to count it) before it is in memory whole."""

    class CappedRequest(Request):
        async def body(self) -> bytes:
            if not hasattr(self, "_body"):
                # Starlette's own cache of the body, as FastAPI's custom-request example.
                self._body = await body_within(self, limit, refused)
            return self._body

    class CappedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def capped(request: Request) -> Response:
                if request.method == "POST":
                    request = CappedRequest(request.scope, request.receive)
                return await handler(request)

            return capped

    return CappedRoute


def too_many(verdict: Verdict, what: str) -> HTTPException:
    seconds = verdict.retry_after
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"Too many {what}: try again in {seconds} seconds.",
        headers={"Retry-After": str(seconds)},
    )


@dataclass(frozen=True)
class Chat:
    """The web chat's routes: ``documented`` are FastAPI's (they make the OpenAPI schema and
    would serve every request alone); ``hot`` are plain Starlette routes for the same paths
    on the hot path (accepting a message), served past FastAPI by ``HotRoutes``."""

    documented: APIRouter
    hot: tuple[Route, ...]


def add_chat(app: FastAPI, chat: Chat) -> None:
    app.include_router(chat.documented)
    app.add_middleware(HotRoutes, routes=chat.hot, handlers=app.exception_handlers)


def reply_to_hub(hub: Hub, reply: ReplyRequested) -> None:
    hub.publish(reply.recipient.value, MessageView.from_reply(reply).model_dump(mode="json"))


def chat_router(
    *,
    conversations: Conversations,
    publisher: EventPublisher,
    hub: Hub,
    metrics: Metrics,
    max_chars: int,
    limits: RateLimits | None = None,
) -> Chat:
    limits = limits if limits is not None else RateLimits()
    limit = max_body_bytes(max_chars)
    too_large = metrics.rejected.labels("web", "too_large").inc
    router = APIRouter(
        tags=["web chat"],
        route_class=capped_route(limit, too_large),
    )
    sessions = SessionCache(conversations)

    async def limit_ip(request: Request) -> None:
        """Before the body is validated: a flood of bad requests counts too. (Async: FastAPI
        runs a plain ``def`` dependency in a worker thread, a hop per request.)"""
        host = request.client.host if request.client else None
        verdict = limits.ip(host)
        if not verdict.allowed:
            limited(verdict, f"client {host} is over {limits.ips.limit} requests a minute")
            raise too_many(verdict, "requests from your address")

    def limited(verdict: Verdict, reason: str) -> None:
        # One line per key and window: a flood is counted, not written out.
        count_rejected(metrics, "web", "rate_limited", reason, quiet=not verdict.first)

    async def conversation_of(session_id: str) -> str:
        if len(session_id) > 100 or (cid := await sessions.conversation(session_id)) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such chat session.")
        return cid

    @router.get("/", include_in_schema=False)
    async def chat_page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @router.post(
        "/api/chat/sessions",
        status_code=status.HTTP_201_CREATED,
        response_model=SessionCreated,
        responses={413: {}, 429: {}},
        dependencies=[Depends(limit_ip)],
    )
    async def create_session(body: Annotated[NewSession | None, Body()] = None) -> SessionCreated:
        session_id, cid = await conversations.open_web_session(body.language if body else None)
        sessions.remember(session_id, cid)
        return SessionCreated(session_id=session_id)

    async def accept_message(request: Request) -> Response:
        """What the documented route below does, without FastAPI's machinery: accepting a
        message is the hot path of the whole system, and FastAPI's per-request work
        (dependency solving, its request and response models) cost as much CPU as the
        accepting itself. Same model, same limits, same errors."""
        await limit_ip(request)
        raw = await body_within(request, limit, too_large)
        body = message_body(raw, request.headers.get("content-type"))
        accepted = await post_message(request.path_params["session_id"], body)
        return Response(accepted.model_dump_json(), 202, media_type="application/json")

    # Served first (``add_chat``); the FastAPI route below documents the API and gives the
    # same answers (tests/integration/channels/test_web_hot_path.py).
    hot = (Route("/api/chat/sessions/{session_id}/messages", accept_message, methods=["POST"]),)

    @router.post(
        "/api/chat/sessions/{session_id}/messages",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=MessageAccepted,
        responses={404: {}, 413: {}, 422: {}, 429: {}, 503: {}},
        dependencies=[Depends(limit_ip)],
    )
    async def post_message(session_id: str, body: NewMessage) -> MessageAccepted:
        cid = await conversation_of(session_id)
        text = body.text.strip()
        if not text:
            metrics.rejected.labels("web", "empty").inc()
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "The message is empty.")
        if len(text) > max_chars:
            metrics.rejected.labels("web", "too_long").inc()
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"The message is too long ({len(text)} characters; at most {max_chars}).",
            )
        provider_id = body.client_message_id or uuid.uuid4().hex
        event = MessageReceived(
            conversation_id=cid,
            message_id=web_message_id(f"web:{provider_id}"),
            channel=Channel.WEB,
            provider_message_id=provider_id,
            sender=Address(channel=Channel.WEB, value=session_id),
            text=text,
        )
        verdict = limits.sender(event.sender)
        if not verdict.allowed:
            limited(
                verdict,
                f"chat {pseudonym(event.sender)} is over {limits.senders.limit} messages a minute",
            )
            raise too_many(verdict, "messages in this chat")
        try:
            await publisher.publish(event)
        except Exception:
            limits.refund(event.sender)  # the browser sends it again: not twice counted
            log.warning("could not queue a web chat message", exc_info=True)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "The service cannot take messages right now; please try again shortly.",
            ) from None
        metrics.messages_in.labels("web").inc()
        return MessageAccepted(message_id=event.message_id)

    @router.get("/api/chat/sessions/{session_id}/messages", response_model=list[MessageView])
    async def get_messages(session_id: str) -> list[MessageView]:
        return await conversations.messages(await conversation_of(session_id))

    @router.get("/api/chat/sessions/{session_id}/events", response_class=EventSourceResponse)
    async def events(session_id: str, request: Request) -> EventSourceResponse:
        await conversation_of(session_id)

        async def stream() -> AsyncIterator[dict[str, Any]]:
            async with hub.listen(session_id) as queue:
                # Tell the browser it is live: it reloads the conversation to catch up.
                # retry: reconnect within a second after a dropped connection.
                yield {"event": "ready", "data": "{}", "retry": 1000}
                while True:
                    try:
                        payload = await asyncio.wait_for(queue.get(), timeout=15)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        continue
                    yield {
                        "event": "message",
                        "id": payload["id"],
                        "data": json.dumps(payload, ensure_ascii=False),
                    }

        return EventSourceResponse(stream(), ping=15)

    return Chat(documented=router, hot=hot)
