"""The same resident across channels: a contact key from an address.

SMS and WhatsApp carry the same phone number; an email address is itself the key. Web
chat sessions and Telegram chats carry no such identity, so they have no contact key.
A message from a new thread continues the contact's recent conversation, and replies go
back on the channel the resident last used (``router.store``).
"""

from __future__ import annotations

import re

from router.events import Address, Channel

_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")


def normalise_phone(value: str) -> str | None:
    """E.164 form (``+358401234567``) of a phone number written with spaces, dashes or a
    ``00`` prefix; None when it is not an international number."""
    digits = re.sub(r"[\s().-]", "", value)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    return digits if _PHONE.fullmatch(digits) else None


def contact_key(address: Address) -> str | None:
    """``tel:+358…`` or ``email:a@b.fi``; None for channels without a lasting identity."""
    if address.channel in (Channel.SMS, Channel.WHATSAPP):
        phone = normalise_phone(address.value)
        return f"tel:{phone}" if phone else None
    if address.channel is Channel.EMAIL and "@" in address.value:
        return f"email:{address.value.lower()}"
    return None
