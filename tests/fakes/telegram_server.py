"""A fake Telegram Bot API: a real aiohttp server on 127.0.0.1 for python-telegram-bot.

It answers ``/bot<token>/<method>`` for the methods the adapter uses (getMe, sendMessage,
getUpdates with offsets and long polling, setWebhook, deleteWebhook, getWebhookInfo) the way
Telegram does: ``{"ok": true, "result": …}``, or ``{"ok": false, "error_code", "description"}``
with the same HTTP status. A test queues updates for the long poll, reads what was sent,
and makes the next sendMessage calls fail.

    async with TelegramFake() as fake:
        bot = Bot(fake.token, base_url=fake.api_url)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackApp

TOKEN = "7000001:AAFakeTokenForTestsOnly_0123456789ab"
BOT_USER: dict[str, Any] = {
    "id": 7000001,
    "is_bot": True,
    "first_name": "Neuvonta",
    "username": "neuvonta_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
_TOKEN_SHAPE = re.compile(r"^\d+:[\w-]+$")
MAX_TEXT_UTF16 = 4096


@dataclass(frozen=True, slots=True)
class Sent:
    """One message the bot sent."""

    chat_id: int
    text: str
    message_id: int
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Failure:
    status: int
    description: str
    retry_after: int | None = None


@dataclass
class TelegramFake(LoopbackApp):
    token: str = TOKEN
    # Telegram forgets an update once a getUpdates asks for a later offset. False: it keeps
    # them, as if that later getUpdates never arrived (a crash right after the batch).
    forget_confirmed: bool = True
    sent: list[Sent] = field(default_factory=list)
    # Every method called, in order, with its parameters.
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    webhook: dict[str, Any] | None = None
    blocked: set[int] = field(default_factory=set)
    port: int = 0
    _updates: list[dict[str, Any]] = field(default_factory=list)
    # Per method: what the next calls do (None: answer normally).
    _failures: dict[str, list[Failure | None]] = field(default_factory=dict)
    _next_update_id: itertools.count[int] = field(default_factory=lambda: itertools.count(500))
    _next_message_id: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _next_incoming_id: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: bool = False
    _runner: web.AppRunner | None = None

    # ---- running ----

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._handle)

    async def stop(self) -> None:
        self._closing = True
        self._wake()
        await super().stop()

    @property
    def api_url(self) -> str:
        """For ``Bot(token, base_url=…)`` and ``NEUVONTA_TELEGRAM_API_URL``."""
        return f"http://127.0.0.1:{self.port}/bot"

    # ---- what a test arranges ----

    def queue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Offer an update to getUpdates (an ``update_id`` is added when missing)."""
        update = {"update_id": next(self._next_update_id), **update}
        self._updates.append(update)
        self._wake()
        return update

    def queue_message(
        self, chat_id: int, text: str, *, language_code: str | None = "fi", **fields: Any
    ) -> dict[str, Any]:
        """A resident's message in a private chat, as Telegram sends it."""
        message_id = fields.pop("message_id", None) or next(self._next_incoming_id)
        message = private_message(chat_id, message_id, text, language_code, **fields)
        return self.queue_update({"message": message})

    def fail_next(
        self,
        method: str,
        n: int = 1,
        status: int = 500,
        description: str = "Internal Server Error",
        retry_after: int | None = None,
        after: int = 0,
    ) -> None:
        """The next ``n`` calls of ``method`` (after ``after`` that work) fail with this
        status."""
        failures = self._failures.setdefault(method.lower(), [])
        failures.extend([None] * after + [Failure(status, description, retry_after)] * n)

    def fail_sends(
        self,
        n: int = 1,
        status: int = 500,
        description: str = "Internal Server Error",
        retry_after: int | None = None,
        after: int = 0,
    ) -> None:
        """The next ``n`` sendMessage calls (after ``after`` that work) fail."""
        self.fail_next("sendMessage", n, status, description, retry_after, after)

    def block_by_user(self, n: int = 1) -> None:
        self.fail_sends(n, 403, "Forbidden: bot was blocked by the user")

    def methods(self) -> list[str]:
        return [name for name, _ in self.calls]

    def offsets_asked(self) -> list[int | None]:
        return [_int(p.get("offset")) for name, p in self.calls if name == "getUpdates"]

    # ---- the API ----

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if not _TOKEN_SHAPE.match(token):
            return _error(404, "Not Found")
        if token != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        self.calls.append((method, params))
        handler = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
        }.get(method.lower())
        if handler is None:
            return _error(404, "Not Found")
        failures = self._failures.get(method.lower())
        failure = failures.pop(0) if failures else None
        if failure is not None:
            return _error(failure.status, failure.description, failure.retry_after)
        return await handler(params)

    async def _get_me(self, params: dict[str, Any]) -> web.Response:
        return _ok(BOT_USER)

    async def _send_message(self, params: dict[str, Any]) -> web.Response:
        chat_id = _int(params.get("chat_id"))
        text = str(params.get("text") or "")
        if chat_id is None:
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > MAX_TEXT_UTF16:
            return _error(400, "Bad Request: message is too long")
        message_id = next(self._next_message_id)
        self.sent.append(Sent(chat_id, text, message_id, params))
        return _ok(
            {
                "message_id": message_id,
                "from": BOT_USER,
                "chat": {"id": chat_id, "first_name": "Asukas", "type": "private"},
                "date": int(time.time()),
                "text": text,
            }
        )

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        if self.webhook is not None:
            return _error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _int(params.get("offset"))
        limit = min(_int(params.get("limit")) or 100, 100)
        timeout = max(0, _int(params.get("timeout")) or 0)
        allowed = _list(params.get("allowed_updates"))
        if offset is not None and self.forget_confirmed:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while True:
            waiting = self._changed
            ready = [
                u
                for u in self._updates
                if (offset is None or u["update_id"] >= offset)
                and (not allowed or any(kind in u for kind in allowed))
            ][:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self._closing:
                return _ok(ready)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting.wait(), remaining)

    async def _set_webhook(self, params: dict[str, Any]) -> web.Response:
        url = str(params.get("url") or "")
        if not url:
            self.webhook = None
            return _ok(True, "Webhook was deleted")
        if not url.startswith("https://"):
            return _error(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        self.webhook = params
        return _ok(True, "Webhook was set")

    async def _delete_webhook(self, params: dict[str, Any]) -> web.Response:
        was = self.webhook is not None
        self.webhook = None
        return _ok(True, "Webhook was deleted" if was else "Webhook is already deleted")

    async def _get_webhook_info(self, params: dict[str, Any]) -> web.Response:
        url = str(self.webhook.get("url")) if self.webhook else ""
        return _ok({"url": url, "has_custom_certificate": False, "pending_update_count": 0})


def private_message(
    chat_id: int,
    message_id: int,
    text: str | None,
    language_code: str | None = "fi",
    **fields: Any,
) -> dict[str, Any]:
    """A ``Message`` object of a private chat."""
    sender: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": "Asukas"}
    if language_code is not None:
        sender["language_code"] = language_code
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": sender,
        "chat": {"id": chat_id, "first_name": "Asukas", "type": "private"},
        "date": int(time.time()),
    }
    if text is not None:
        message["text"] = text
    message.update(fields)
    return message


async def _params(request: web.Request) -> dict[str, Any]:
    """Parameters as the Bot API takes them: query string, form (urlencoded or multipart)
    or JSON body."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.can_read_body:
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    return [str(v) for v in value] if isinstance(value, list) else []


def _ok(result: Any, description: str | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return web.json_response(body)


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)
