"""SMS and WhatsApp through Twilio: one adapter for both (WhatsApp is ``whatsapp:`` numbers).

Outbound goes through the Twilio REST client on its aiohttp client, one attempt per call;
the gateway retries when the Delivery says so. The client is made on the first send (an
aiohttp session needs the running loop).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
from pydantic import SecretStr
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from channels.base import (
    Capabilities,
    Delivery,
    InboundRequest,
    Parsed,
    sources_as_text,
    with_absolute_sources,
)
from channels.sms import parse, signature
from channels.sms.parse import WHATSAPP_PREFIX
from channels.sms.render import DEFAULT_MAX_SEGMENTS, SmsText, render_sms, render_whatsapp
from channels.sms.routes import twilio_router
from channels.sms.segments import LIMITS
from router.events import Channel, ReplyRequested
from router.settings import Settings

if TYPE_CHECKING:
    from fastapi import APIRouter

    from channels.inbox import Inbox

log = logging.getLogger(__name__)

SEND_TIMEOUT = 15.0


class _HttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Twilio's aiohttp client, with basic auth sent as a header: aiohttp 3.14 deprecates
    the ``BasicAuth`` object Twilio's client builds for it."""

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the library's signature)
        allow_redirects: bool = False,
    ) -> Any:
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(auth[0], auth[1])
        return await super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def _retryable(status: int) -> bool:
    return status >= 500 or status == 429


class TwilioAdapter:
    channels = (Channel.SMS, Channel.WHATSAPP)

    def __init__(
        self,
        account_sid: str,
        auth_token: SecretStr | str,
        from_number: str,
        *,
        whatsapp_from: str | None = None,
        public_url: str | None = None,
        webhook_base: str | None = None,
        api_url: str | None = None,
        max_segments: int = DEFAULT_MAX_SEGMENTS,
        timeout: float = SEND_TIMEOUT,
    ) -> None:
        self.account_sid = account_sid
        self._token = auth_token if isinstance(auth_token, SecretStr) else SecretStr(auth_token)
        self.from_number = from_number
        wa = whatsapp_from or from_number
        self.whatsapp_from = wa if wa.lower().startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + wa
        self.public_url = public_url.rstrip("/") if public_url else None
        # The URL Twilio calls, which its signatures are made over (the public URL).
        base = webhook_base or self.public_url
        self.webhook_base = base.rstrip("/") if base else None
        self.api_url = api_url.rstrip("/") if api_url else None
        self.max_segments = max_segments
        self.timeout = timeout
        self._http: Any = None
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioAdapter | None:
        token = settings.twilio_auth_token
        if not (settings.twilio_account_sid and token and settings.twilio_from_number):
            return None
        if not settings.public_url:
            log.warning(
                "Twilio: NEUVONTA_PUBLIC_URL is not set, so inbound webhooks cannot be "
                "verified and are refused (403); sending works"
            )
        return cls(
            settings.twilio_account_sid,
            token,
            settings.twilio_from_number,
            whatsapp_from=settings.twilio_whatsapp_from,
            public_url=settings.public_url,
            api_url=settings.twilio_api_url,
        )

    def __repr__(self) -> str:  # never the token
        return f"TwilioAdapter(account_sid={self.account_sid!r}, from={self.from_number!r})"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            structured_sources=False,
            max_chars=self.max_segments * LIMITS["GSM-7"][1],
            delivered_on_store=False,
        )

    # ---- inbound ----

    def signature_url(self, path: str, query: str = "") -> str:
        """The URL Twilio signs for ``path`` ("" when no public URL is configured)."""
        if not self.webhook_base:
            return ""
        return signature.signature_url(self.webhook_base, path, query)

    def verify(self, request: InboundRequest) -> None:
        signature.check(self._token.get_secret_value(), request)

    def parse(self, request: InboundRequest) -> Parsed:
        form = parse.as_form(parse.form_fields(request.body))
        path = request.url.partition("?")[0]
        if path.endswith(signature.STATUS_PATH):
            return parse.parse_status(form)
        return parse.parse_message(form)

    def webhooks(self, inbox: Inbox) -> APIRouter:
        return twilio_router(self, inbox)

    async def receive(self, inbox: Inbox, stopping: asyncio.Event) -> None:
        return  # Twilio only calls webhooks

    # ---- outbound ----

    def render(self, reply: ReplyRequested) -> SmsText:
        links = sources_as_text(with_absolute_sources(reply, self.public_url))
        if reply.channel is Channel.WHATSAPP:
            return render_whatsapp(reply.text, links)
        return render_sms(reply.text, links, self.max_segments)

    def _addresses(self, reply: ReplyRequested) -> tuple[str, str]:
        """(to, from) for Twilio: WhatsApp numbers carry the ``whatsapp:`` prefix."""
        if reply.channel is Channel.WHATSAPP:
            return WHATSAPP_PREFIX + reply.recipient.value, self.whatsapp_from
        return reply.recipient.value, self.from_number

    def _rest(self) -> Any:
        if self._client is None:
            self._http = _HttpClient()
            client = Client(
                self.account_sid, self._token.get_secret_value(), http_client=self._http
            )
            # Hosts come from Settings only (the client would read TWILIO_EDGE/REGION, and a
            # base URL override only works without them).
            client.edge = None
            client.region = None
            if self.api_url:
                client.api.base_url = self.api_url
            self._client = client
        return self._client

    async def send(self, reply: ReplyRequested) -> Delivery:
        if reply.channel not in self.channels or reply.recipient.channel is not reply.channel:
            return Delivery(ok=False, error=f"Twilio does not send on {reply.channel.value}")
        text = self.render(reply).text
        if not text:
            return Delivery(ok=False, error="nothing to send (an empty reply)")
        to, from_ = self._addresses(reply)
        extra: dict[str, str] = {}
        if self.webhook_base:
            extra["status_callback"] = self.webhook_base + signature.STATUS_PATH
        try:
            async with asyncio.timeout(self.timeout):
                message = await self._rest().messages.create_async(
                    to=to, from_=from_, body=text, **extra
                )
        except TwilioRestException as e:
            return self._refused(e.status, e.code, e.msg)
        except TwilioServiceException as e:
            return self._refused(e.status, e.code, e.detail or e.title)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            log.warning("Twilio: no answer from the API (%s)", type(e).__name__)
            return Delivery(
                ok=False, error=f"Twilio API unreachable: {type(e).__name__}", retryable=True
            )
        except (TwilioException, ValueError) as e:  # a 2xx with an unreadable body
            # The message may have gone out: another try could send it twice.
            return Delivery(ok=False, error=f"unexpected answer from Twilio: {type(e).__name__}")
        sid = getattr(message, "sid", None)
        if not sid:
            return Delivery(ok=False, error="Twilio accepted the message without a SID")
        return Delivery(ok=True, provider_message_id=str(sid))

    def _refused(self, status: int, code: object, message: object) -> Delivery:
        retryable = _retryable(int(status))
        error = f"Twilio error {code} (HTTP {status}): {message}"
        log.log(logging.WARNING if retryable else logging.INFO, "Twilio refused a send: %s", error)
        return Delivery(ok=False, error=error[:500], retryable=retryable)

    async def aclose(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()


def from_settings(settings: Settings) -> TwilioAdapter | None:
    return TwilioAdapter.from_settings(settings)
