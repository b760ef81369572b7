"""The inbound SMTP server: an aiosmtpd protocol served from the running event loop.

Only mail for the municipality's address is taken (550 at RCPT for any other); each
message's fate is answered at the end of DATA, so nothing is acknowledged before it is
in the inbox: 250 taken (or recognised as an auto-reply and dropped on purpose), 451
try again (our side is down), 550/552 refused with the reason.

Rate limits (the server is reachable by anyone): a connecting address over the per-IP
limit gets ``450 4.7.1`` at MAIL FROM (each mail transaction counts), a sender over the
per-sender limit ``450 4.7.1`` at the end of DATA. Both are temporary: a real mail server
tries again later and gets through once under the limit. Behind the municipality's own
mail gateway every mail comes from its address, so the per-IP limit is then a limit on all
mail together (still only a delay, never a loss).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.base import InboundRequest
from channels.email import headers as h
from channels.email.intake import Outcome, Result

if TYPE_CHECKING:
    from channels.inbox import Inbox

log = logging.getLogger(__name__)

Take = Callable[[InboundRequest], Awaitable[Outcome]]


IP_LIMITED = "450 4.7.1 Too many messages from your address, try again later"


def peer_host(peer: object) -> str:
    """The client's address of an aiosmtpd session (``(host, port, …)`` over TCP)."""
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "unknown")


def _reason(text: str) -> str:
    """An SMTP reply text: one line of printable ASCII."""
    return re.sub(r"[^ -~]", "?", " ".join(text.split()))[:200] or "refused"


def smtp_reply(outcome: Outcome) -> str:
    match outcome.result:
        case Result.ACCEPTED:
            return "250 OK"
        case Result.IGNORED:
            # Taken, so the sender does not retry; it is only never answered.
            return "250 OK"
        case Result.RETRY:
            return "451 4.3.0 Try again later"
        case Result.LIMITED:
            return f"450 4.7.1 {_reason(outcome.reason)}"
        case Result.REJECTED if outcome.status == 552:
            return f"552 5.3.4 {_reason(outcome.reason)}"
    return f"550 5.6.0 {_reason(outcome.reason)}"


class InboundHandler:
    """aiosmtpd's handler: the hooks below are found by name."""

    def __init__(self, own_address: str, take: Take, inbox: Inbox | None = None) -> None:
        self.own_address = own_address.lower()
        self.take = take
        # Where the per-IP limit is kept and refusals are counted (None: no limit).
        self.inbox = inbox

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.inbox is not None:
            host = peer_host(session.peer)
            verdict = self.inbox.limits.ip(host)
            if not verdict.allowed:
                self.inbox.rejected(
                    "email",
                    "rate_limited",
                    f"{host} is over {self.inbox.limits.ips.limit} mails a minute",
                    quiet=not verdict.first,
                )
                return IP_LIMITED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if h.envelope_address(address) != self.own_address:
            return "550 5.1.1 No such recipient here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        request = InboundRequest(
            body=envelope.original_content or b"",
            headers={
                # aiosmtpd gives the null sender ("MAIL FROM:<>") as "<>".
                "mail-from": envelope.mail_from or "<>",
                "rcpt-to": ", ".join(envelope.rcpt_tos),
            },
        )
        return smtp_reply(await self.take(request))


async def serve_smtp(
    handler: InboundHandler,
    *,
    host: str,
    port: int,
    max_bytes: int,
    hostname: str,
    stopping: asyncio.Event,
    listening: Callable[[int], None] | None = None,
) -> None:
    """Serve until ``stopping`` is set. ``listening`` gets the bound port (port 0 picks a
    free one)."""
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            hostname=hostname,  # no getfqdn() lookup per connection
            ident="Neuvonta ESMTP",
            loop=loop,
        )

    server = await loop.create_server(protocol, host=host, port=port)
    bound = server.sockets[0].getsockname()[1]
    log.info("email: SMTP server listening on %s:%s", host, bound)
    if listening is not None:
        listening(bound)
    try:
        await stopping.wait()
    finally:
        server.close()
        await server.wait_closed()
