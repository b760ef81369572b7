"""A fake OpenAI-compatible chat API: a real aiohttp server on 127.0.0.1 (a free port).

It serves ``POST /v1/chat/completions`` (bearer key) and Azure OpenAI's
``POST /openai/deployments/{deployment}/chat/completions?api-version=…`` (``api-key``
header), plus ``GET /v1/models``; a wrong key gets 401. Every accepted request body is
recorded. What it answers is scripted, one ``Reply`` per request in order (then
``default``): a structured answer (the message's JSON content, or a tool call when the
request offered tools), raw content (invalid JSON), a refusal, a delay, or an error status
with headers (429 storms with Retry-After, 500 storms). ``no_response_format`` makes it a
server without structured output: a request with ``response_format`` gets a 400.

    async with OpenAIFake() as fake:
        fake.then(answer(answer="...", cited_ids=["doc-1"]))
        client = AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackApp

API_KEY = "sk-fake-0123456789abcdefghijklmnopqrstuv"
MODEL = "fake-gpt"


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server does with one request."""

    status: int = 200
    # A structured answer: the JSON content, or a tool call's arguments when tools were asked.
    answer: Mapping[str, Any] | None = None
    # Raw message content (used when ``answer`` is None): invalid JSON, prose, "".
    content: str | None = None
    refusal: str | None = None
    # Answer with a tool call even though the request asked for a response_format.
    as_tool_call: bool = False
    finish_reason: str = "stop"
    delay: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str = "error"
    prompt_tokens: int = 321
    completion_tokens: int = 54


def answer(text: str = "", cited: Sequence[str] = (), **fields: Any) -> Reply:
    """A well-formed answer object citing ``cited``; ``fields`` override its other fields.
    (``dataclasses.replace`` changes the reply itself: tokens, delay.)"""
    data: dict[str, Any] = {
        "answer_found": True,
        "answer": text,
        "cited_ids": list(cited),
        "language": "fi",
        "department": None,
        "urgent": False,
        "personal_case": False,
        "wants_human": False,
        "confidence": 0.9,
        "reason": "the sources answer the question",
        **fields,
    }
    return Reply(answer=data)


def raw(content: str, **kw: Any) -> Reply:
    return Reply(content=content, **kw)


def refusal(text: str = "I'm sorry, I can't help with that.") -> Reply:
    return Reply(refusal=text)


def status(code: int, *, retry_after: float | None = None, message: str = "") -> Reply:
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return Reply(status=code, headers=headers, error=message or f"fake status {code}")


def slow(seconds: float, reply: Reply | None = None) -> Reply:
    return replace(reply or answer(), delay=seconds)


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    query: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    def contents(self, role: str) -> list[str]:
        return [str(m.get("content", "")) for m in self.messages if m.get("role") == role]


Responder = Callable[[dict[str, Any]], Reply]


@dataclass
class OpenAIFake(LoopbackApp):
    api_key: str = API_KEY
    model: str = MODEL
    # A server without structured outputs: response_format gets a 400 (tools still work).
    no_response_format: bool = False
    # When the script is empty: this reply (or this function of the body); None: a 500.
    default: Reply | Responder | None = None
    requests: list[Received] = field(default_factory=list)
    # Requests refused before they were recorded (wrong key), by path.
    unauthorized: list[str] = field(default_factory=list)
    port: int = 0
    _script: list[Reply] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    # ---- running ----

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure)

    async def stop(self) -> None:
        self._closing.set()  # wakes delayed replies
        await super().stop()

    @property
    def base_url(self) -> str:
        """For ``AsyncOpenAI(base_url=…)`` and ``NEUVONTA_LLM_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def azure_endpoint(self) -> str:
        """For ``AsyncAzureOpenAI(azure_endpoint=…)``."""
        return f"http://127.0.0.1:{self.port}"

    # ---- what a test arranges and reads ----

    def then(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order."""
        self._script.extend(replies)

    def storm(self, code: int, times: int, *, retry_after: float | None = None) -> None:
        self.then(*(status(code, retry_after=retry_after) for _ in range(times)))

    @property
    def pending(self) -> int:
        """Scripted replies not used yet."""
        return len(self._script)

    def bodies_text(self) -> str:
        """Every recorded body as JSON text (with non-ASCII kept), for "never sent" checks."""
        return "\n".join(json.dumps(r.body, ensure_ascii=False) for r in self.requests)

    # ---- serving ----

    async def _models(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._unauthorized(request)
        model = {"id": self.model, "object": "model", "created": 0, "owned_by": "fake"}
        return web.json_response({"object": "list", "data": [model]})

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._unauthorized(request)
        return await self._complete(request)

    async def _azure(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("api-key") != self.api_key:
            return self._unauthorized(request)
        if not request.query.get("api-version"):
            return _error(404, "Resource not found", code="404")
        return await self._complete(request)

    def _unauthorized(self, request: web.Request) -> web.Response:
        self.unauthorized.append(request.path)
        return _error(401, "Incorrect API key provided.", code="invalid_api_key")

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict) or not body.get("messages"):
            return _error(400, "'messages' is a required property", param="messages")
        self.requests.append(Received(request.path, dict(request.query), body))
        response_format = body.get("response_format")
        if self.no_response_format and response_format is not None:
            kind = response_format.get("type") if isinstance(response_format, dict) else "?"
            return _error(
                400,
                f"response_format of type '{kind}' is not supported by this server",
                param="response_format",
            )
        reply = self._next(body)
        if reply.delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), reply.delay)
        if reply.status >= 400:
            return _error(reply.status, reply.error, headers=reply.headers)
        return web.json_response(self._completion(body, reply), headers=dict(reply.headers))

    def _next(self, body: dict[str, Any]) -> Reply:
        if self._script:
            return self._script.pop(0)
        if callable(self.default):
            return self.default(body)
        return self.default or status(500, message="the fake has no reply scripted")

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        n = next(self._ids)
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        finish = reply.finish_reason
        tools = body.get("tools") or []
        if reply.refusal is not None:
            message["refusal"] = reply.refusal
        elif reply.answer is not None and (tools or reply.as_tool_call):
            name = tools[0]["function"]["name"] if tools else "answer"
            arguments = json.dumps(reply.answer, ensure_ascii=False)
            message["tool_calls"] = [
                {
                    "id": f"call_{n}",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ]
            finish = "tool_calls" if finish == "stop" else finish
        elif reply.answer is not None:
            message["content"] = json.dumps(reply.answer, ensure_ascii=False)
        else:
            message["content"] = reply.content
        return {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", self.model)),
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }


def _error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status == 429:
        kind = "rate_limit_exceeded"
    error = {"message": message, "type": kind, "param": param, "code": code}
    return web.json_response({"error": error}, status=status, headers=dict(headers or {}))
