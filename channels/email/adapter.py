"""The email channel: inbound over SMTP and/or IMAP polling, outbound through a relay."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from channels.base import Capabilities, Delivery, InboundRequest, Parsed, Rejected
from channels.email import headers as h
from channels.email.compose import ThreadHeaders, compose_reply, reply_message_id, thread_key
from channels.email.intake import Intake
from channels.email.parse import UNREADABLE, EmailRules, parse_email
from channels.email.relay import relay
from channels.email.smtp_server import InboundHandler, serve_smtp
from router.events import Channel, ReplyRequested, utcnow
from router.settings import Settings

if TYPE_CHECKING:
    from email.message import EmailMessage

    from fastapi import APIRouter

    from channels.inbox import ChannelState, Inbox

log = logging.getLogger(__name__)


class EmailAdapter:
    def __init__(self, settings: Settings, *, state: ChannelState | None = None) -> None:
        if not settings.email_address or not settings.smtp_host:
            raise ValueError("the email channel needs an email address and an SMTP relay")
        self.settings = settings
        self.address = settings.email_address.strip().lower()
        self.domain = h.domain_of(self.address)
        self.rules = EmailRules(
            own_address=self.address,
            max_bytes=settings.email_max_bytes,
            max_text_chars=settings.max_message_chars,
        )
        # Where the thread headers of inbound mail are kept; replies read them. Bound from
        # the inbox the gateway hands to ``webhooks`` / ``receive``.
        self.state = state
        self.smtp_port: int | None = None
        self.smtp_listening = asyncio.Event()

    @property
    def channels(self) -> tuple[Channel, ...]:
        return (Channel.EMAIL,)

    @property
    def capabilities(self) -> Capabilities:
        # Sources come separately and are rendered by us (links in HTML, lines in text).
        return Capabilities(structured_sources=True, max_chars=None, delivered_on_store=False)

    # ---- inbound -----------------------------------------------------------------------

    def verify(self, request: InboundRequest) -> None:
        """SMTP has no signature: mail is ours when it is addressed to our address (the
        server already refuses other recipients at RCPT)."""
        rcpt = request.headers.get("rcpt-to")
        if rcpt is not None and self.address not in {
            h.envelope_address(r) for r in rcpt.split(",")
        }:
            raise Rejected("not addressed to this service", UNREADABLE)

    def parse(self, request: InboundRequest) -> Parsed:
        self.verify(request)
        try:
            return parse_email(request, self.rules)
        except Rejected:
            raise
        except Exception as e:  # parse_email is written not to; a refusal beats a crash
            log.exception("email: unexpected failure reading a message")
            raise Rejected("the message could not be read as email", UNREADABLE) from e

    def _bind(self, inbox: Inbox) -> None:
        if self.state is None:
            self.state = inbox.state

    def webhooks(self, inbox: Inbox) -> APIRouter | None:
        self._bind(inbox)
        return None

    def _listening(self, port: int) -> None:
        self.smtp_port = port
        self.smtp_listening.set()

    async def receive(self, inbox: Inbox, stopping: asyncio.Event) -> None:
        self._bind(inbox)
        s = self.settings
        intake = Intake(self.parse, inbox)
        async with asyncio.TaskGroup() as tasks:
            if s.smtp_listen_port is not None:
                handler = InboundHandler(self.address, intake.take, inbox)
                tasks.create_task(
                    serve_smtp(
                        handler,
                        host=s.smtp_listen_host,
                        port=s.smtp_listen_port,
                        max_bytes=s.email_max_bytes,
                        hostname=self.domain,
                        stopping=stopping,
                        listening=self._listening,
                    )
                )
            if s.imap_host:
                from channels.email.imap_poll import poll_imap

                tasks.create_task(poll_imap(s, intake, inbox.state, stopping))

    # ---- outbound ----------------------------------------------------------------------

    def render(self, reply: ReplyRequested, thread: ThreadHeaders | None = None) -> EmailMessage:
        return compose_reply(
            reply,
            thread,
            from_address=self.address,
            message_id=reply_message_id(reply, self.domain),
            date=utcnow(),
            public_url=self.settings.public_url,
        )

    async def _thread(self, thread: str | None) -> ThreadHeaders | None:
        if not thread or self.state is None:
            return None
        try:
            return ThreadHeaders.from_state(await self.state.get(thread_key(thread)))
        except Exception:  # threaded by the root id alone, rather than not sent
            log.warning("email: thread headers unavailable", exc_info=True)
            return None

    async def send(self, reply: ReplyRequested) -> Delivery:
        if reply.recipient.channel is not Channel.EMAIL or not h.valid_address(
            reply.recipient.value
        ):
            return Delivery(ok=False, error="not an email address", retryable=False)
        try:
            message = self.render(reply, await self._thread(reply.thread))
        except (ValueError, TypeError) as e:
            return Delivery(ok=False, error=f"the reply could not be composed: {e}")
        return await relay(message, self.settings)

    async def aclose(self) -> None:
        """Nothing held open: each send is its own SMTP session."""


def from_settings(settings: Settings) -> EmailAdapter | None:
    """The email channel, or None when it is off (no address or no relay to send with)."""
    if not settings.email_address or not settings.smtp_host:
        return None
    return EmailAdapter(settings)
