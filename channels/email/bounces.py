"""A delivery report (RFC 3464) about one of our replies → the reply's failed delivery.

A bounce is never answered; when it is a standard report on a reply we sent, it also
tells the reply's record that it did not arrive, so staff see it on the ticket.
"""

from __future__ import annotations

import email
import email.policy
from email.message import Message

from channels.email import headers as h
from channels.email.compose import REPLY_ID_MARK
from router.events import Channel, DeliveryReported, DeliveryStatus

_ORIGINAL = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")


def _parts(msg: Message) -> list[Message]:
    try:
        return list(msg.walk())
    except Exception:
        return []


def _status_blocks(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status part (per message, per recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, str):  # not split by the parser: read the blocks ourselves
        blocks = payload.replace("\r\n", "\n").split("\n\n")
        return [email.message_from_string(b, policy=email.policy.default) for b in blocks]
    return []


def _original_id(part: Message) -> str | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return h.normalise_id(h.raw(payload[0], "message-id"))
    if isinstance(payload, str):
        headers = email.message_from_string(payload, policy=email.policy.default)
        return h.normalise_id(h.raw(headers, "message-id"))
    return None


def bounced_reply(msg: Message, own_domain: str) -> DeliveryReported | None:
    """The failed delivery a report tells of, when the original is one of our replies."""
    try:
        if msg.get_content_type() != "multipart/report":
            return None
    except Exception:
        return None
    failed: list[str] = []
    original: str | None = None
    for part in _parts(msg):
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for block in _status_blocks(part):
                action = h.raw(block, "action").strip().lower()
                if action == "failed":
                    status = h.raw(block, "status").strip()
                    diagnostic = h.decoded(block, "diagnostic-code")
                    failed.append(" ".join(p for p in (status, diagnostic) if p))
        elif kind in _ORIGINAL and original is None:
            original = _original_id(part)
    # Only ids we made (``<reply id>.reply@<our domain>``) are ours to report on.
    ours = f"{REPLY_ID_MARK}{own_domain}"
    if not failed or not original or not original.lower().endswith(ours):
        return None
    return DeliveryReported(
        channel=Channel.EMAIL,
        provider_message_id=original,
        status=DeliveryStatus.UNDELIVERED,
        error=h.text(f"bounced: {'; '.join(failed)}")[:300],
    )
