"""A real SMTP relay on a free loopback port (aiosmtpd) that records what it is given.

``fail_next(n, code)`` makes the next ``n`` transactions fail with ``code`` (451: try
again later; 550: refused), at RCPT or at the end of DATA. With ``login=(user, password)``
it offers AUTH (over plain TCP: loopback only) and takes mail only after a good login.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

_TEXT = {451: "451 4.7.1 Try again later", 550: "550 5.1.1 Mailbox unavailable"}


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


@dataclass
class FakeRelay:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    transactions: int = 0
    login: tuple[str, str] | None = None
    logins: list[str] = field(default_factory=list)
    _failures: list[tuple[int, str]] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def fail_next(self, n: int, code: int = 451, at: Literal["rcpt", "data"] = "data") -> None:
        self._failures.extend([(code, at)] * n)

    def _failure(self, at: str) -> str | None:
        if self._failures and self._failures[0][1] == at:
            code, _ = self._failures.pop(0)
            return _TEXT.get(code, f"{code} failed")
        return None

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.login is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
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
        failure = self._failure("rcpt")
        if failure:
            self.transactions += 1
            return failure
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.transactions += 1
        failure = self._failure("data")
        if failure:
            return failure
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(
            Received(envelope.mail_from or "", list(envelope.rcpt_tos), message, raw)
        )
        self._arrived.set()
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        ok = (
            self.login is not None
            and isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self.login
        )
        if ok and isinstance(data, LoginPassword):
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 on a failure

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received


@contextlib.asynccontextmanager
async def smtp_relay(login: tuple[str, str] | None = None) -> AsyncIterator[FakeRelay]:
    loop = asyncio.get_running_loop()
    relay = FakeRelay(login=login)

    def protocol() -> SMTP:
        if login is None:
            return SMTP(relay, hostname="relay.test", ident="Fake relay", loop=loop)
        return SMTP(
            relay,
            hostname="relay.test",
            ident="Fake relay",
            loop=loop,
            authenticator=relay.authenticate,
            # Not auth_required: aiosmtpd warns about that without TLS; handle_MAIL checks.
            auth_require_tls=False,
        )

    server = await loop.create_server(
        protocol,
        host=relay.host,
        port=0,
    )
    relay.port = server.sockets[0].getsockname()[1]
    try:
        yield relay
    finally:
        server.close()
        await server.wait_closed()
