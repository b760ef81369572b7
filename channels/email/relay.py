"""One delivery attempt of an outbound email through the configured SMTP relay.

Retries belong to the gateway: this says whether another try could help. Network
trouble, timeouts and 4xx answers could; a 5xx answer (recipient refused, message
refused, login refused) will not until someone changes something.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage

import aiosmtplib

from channels.base import Delivery
from router.settings import Settings

log = logging.getLogger(__name__)

# Per SMTP step, and for the whole attempt: under the delivery consumer's ack wait (30 s
# by default), so a slow relay is not handed the same reply twice at once.
STEP_TIMEOUT = 15.0
SEND_TIMEOUT = 25.0
# Port 465 is SMTP over TLS from the first byte (RFC 8314); other ports use STARTTLS.
IMPLICIT_TLS_PORT = 465


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def _refused(code: int, message: str, what: str) -> Delivery:
    return Delivery(
        ok=False,
        error=f"SMTP {code} ({what}): {_one_line(message)}",
        retryable=400 <= code < 500,
    )


async def relay(message: EmailMessage, settings: Settings) -> Delivery:
    """Hand ``message`` to the relay once. ``provider_message_id``: its Message-ID."""
    assert settings.smtp_host is not None
    implicit_tls = settings.smtp_port == IMPLICIT_TLS_PORT
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    message_id = str(message.get("Message-ID", "")).strip().strip("<>") or None
    try:
        async with asyncio.timeout(SEND_TIMEOUT):
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username or None,
                password=password if settings.smtp_username else None,
                use_tls=implicit_tls,
                start_tls=settings.smtp_starttls and not implicit_tls,
                timeout=STEP_TIMEOUT,
                local_hostname=(settings.email_address or "").rpartition("@")[2] or None,
            )
    except aiosmtplib.SMTPRecipientsRefused as e:
        codes = [r.code for r in e.recipients] or [550]
        # Retry only when every refusal was temporary (a greylisting relay, a full mailbox).
        worst = max(codes)
        return _refused(worst, "; ".join(r.message for r in e.recipients), "recipient refused")
    except aiosmtplib.SMTPAuthenticationError as e:
        log.error("email: the SMTP relay refused our login (%s)", e.code)
        return _refused(e.code, e.message, "login refused")
    except aiosmtplib.SMTPSenderRefused as e:
        return _refused(e.code, e.message, "sender refused")
    except aiosmtplib.SMTPDataError as e:
        return _refused(e.code, e.message, "message refused")
    except aiosmtplib.SMTPResponseException as e:
        return _refused(e.code, e.message, "relay")
    except aiosmtplib.SMTPNotSupported as e:
        return Delivery(ok=False, error=f"SMTP relay: {_one_line(str(e))}", retryable=False)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
        # Connection refused or lost, timeouts, TLS trouble: the relay may be back soon.
        return Delivery(
            ok=False,
            error=f"SMTP relay unreachable: {type(e).__name__} {_one_line(str(e))}".strip(),
            retryable=True,
        )
    except ValueError as e:  # a message aiosmtplib cannot send (no usable recipient)
        return Delivery(ok=False, error=f"not sendable: {_one_line(str(e))}", retryable=False)
    return Delivery(ok=True, provider_message_id=message_id)
