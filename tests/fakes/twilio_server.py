"""A stand-in for Twilio on loopback: the Messages REST endpoint, and webhook signing.

``FakeTwilio`` is a real aiohttp HTTP server on 127.0.0.1 (a free port) serving
``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` as Twilio does: HTTP basic auth
with the account SID and auth token, a form body, a JSON message resource in return. It
records every accepted message and can be told to fail the next calls.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

from aiohttp import web
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from router.events import utcnow
from tests.fakes.loopback import LoopbackApp

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-auth-token-0123456789abcdef"


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@dataclass
class _Failure:
    status: int
    body: dict[str, Any]


@dataclass
class FakeTwilio(LoopbackApp):
    # Calls still being answered when it stops are let finish (as aiohttp's default).
    shutdown_timeout: ClassVar[float] = 60.0

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    # Accepted messages: each the form Twilio received (To, From, Body, StatusCallback…).
    messages: list[dict[str, str]] = field(default_factory=list)
    # Every call to the Messages endpoint, accepted or not.
    calls: int = 0
    unauthorized: int = 0
    _failures: list[_Failure] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        """The API base URL (``settings.twilio_api_url``)."""
        return f"http://127.0.0.1:{self.port}"

    def fail_next(
        self, n: int = 1, status: int = 500, code: int | None = None, message: str = ""
    ) -> None:
        """The next ``n`` calls answer ``status`` with a Twilio error body (``code``)."""
        body = _error(status, code or status, message or "Internal Server Error")
        self._failures += [_Failure(status, body) for _ in range(n)]

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(
            password, self.auth_token
        )

    async def _messages(self, request: web.Request) -> web.Response:
        self.calls += 1
        if request.match_info["account"] != self.account_sid or not self._authorized(request):
            self.unauthorized += 1
            return web.json_response(_error(401, 20003, "Authenticate"), status=401)
        if self._failures:
            failure = self._failures.pop(0)
            return web.json_response(failure.body, status=failure.status)
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        for name in ("To", "From", "Body"):
            if not form.get(name):
                return web.json_response(
                    _error(400, 21604 if name == "Body" else 21603, f"A '{name}' is required"),
                    status=400,
                )
        self.messages.append(form)
        return web.json_response(self._resource(form), status=201)

    def _resource(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(utcnow())
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form["From"],
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": form["To"],
            "uri": uri,
        }

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self._messages)


def sign(url: str, params: dict[str, str] | list[tuple[str, str]], token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio sends with a form posted to ``url``."""
    pairs = list(params.items()) if isinstance(params, dict) else list(params)
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)

    class Fields(dict[str, list[str]]):
        def getall(self, name: str) -> list[str]:
            return self[name]

    return str(RequestValidator(token).compute_signature(url, Fields(grouped)))


def signed_form(
    url: str, params: dict[str, str] | list[tuple[str, str]], token: str = AUTH_TOKEN
) -> tuple[bytes, dict[str, str]]:
    """A webhook request as Twilio makes it: the form-encoded body and its headers."""
    body = urlencode(list(params.items()) if isinstance(params, dict) else params).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(url, params, token),
        "I-Twilio-Idempotency-Token": secrets.token_hex(8),
    }
    return body, headers


def inbound_sms(
    sid: str, sender: str, body: str, to: str = "+358451234567", **extra: str
) -> dict[str, str]:
    """The form Twilio posts for an incoming SMS (``whatsapp:`` numbers for WhatsApp)."""
    return {
        "ToCountry": "FI",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": to,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def status_callback(
    sid: str, status: str, to: str = "+358401234567", **extra: str
) -> dict[str, str]:
    """The form Twilio posts to a reply's StatusCallback."""
    return {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": to,
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+358451234567",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def new_sid() -> str:
    return "SM" + secrets.token_hex(16)
