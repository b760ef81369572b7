"""Reading the headers of an inbound message without trusting them.

``email``'s header objects parse on access and have raised on malformed input; these
helpers read the raw values (``Message.raw_items``), decode what they can and never raise.
"""

from __future__ import annotations

import hashlib
import re
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses

# Our threading ids go into headers and keys: printable ASCII without spaces or brackets.
_ID = re.compile(r"^[!-;=?-~]{1,250}$")
_BRACKETED = re.compile(r"<([^<>\s]*)>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_ID = 200


def text(value: str) -> str:
    """A string safe to publish and store: the raw 8-bit bytes of a header (carried as
    surrogates) read as UTF-8, control characters (NUL among them) dropped."""
    fixed = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _CONTROL.sub("", fixed)


def raw(msg: Message, name: str) -> str:
    """The first ``name`` header's raw value ("" when absent)."""
    values = raw_all(msg, name)
    return values[0] if values else ""


def raw_all(msg: Message, name: str) -> list[str]:
    wanted = name.lower()
    try:
        return [str(v) for k, v in msg.raw_items() if k.lower() == wanted]
    except Exception:  # a header the policy could not even split
        return []


def decoded(msg: Message, name: str) -> str:
    """A header's value with RFC 2047 encoded words decoded, unfolded, best effort."""
    value = raw(msg, name)
    if not value:
        return ""
    unfolded = re.sub(r"\r?\n[ \t]+", " ", value).replace("\r", " ").replace("\n", " ")
    try:
        result = str(make_header(decode_header(unfolded)))
    except Exception:  # unknown charsets, broken encoded words: keep the raw text
        result = unfolded
    return " ".join(text(result).split())


def normalise_id(value: str) -> str | None:
    """A Message-ID without its angle brackets, or None when it is unusable."""
    value = text(value).strip()
    found = _BRACKETED.search(value)
    if found:
        value = found.group(1)
    value = value.strip().strip("<>")
    return value if _ID.fullmatch(value) else None


def id_list(value: str) -> list[str]:
    """The ids of a References or In-Reply-To header, in order, without repeats."""
    value = text(value)
    found = _BRACKETED.findall(value) or value.split()
    ids = (normalise_id(v) for v in found)
    return list(dict.fromkeys(i for i in ids if i))


def short_id(value: str) -> str:
    """An id that fits the 200-character provider id and keys: long ones are hashed."""
    if len(value) <= _MAX_ID:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def raw_hash(body: bytes) -> str:
    """A stable id for a message without a Message-ID: its bytes' hash."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


# Reply and forward prefixes: en, fi (Vs = vastaus, VL = välitetty), sv (SV = svar,
# VB = vidarebefordrat), de (AW, WG); Outlook adds counts ("Re[2]:").
_PREFIX = re.compile(r"(?i)^\s*(?:re|fwd?|sv|vs|vl|vb|aw|wg|antw|tr)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*")


def normalise_subject(subject: str) -> str:
    """The subject without reply/forward prefixes ("Re: SV: Fwd: x" → "x")."""
    subject = " ".join(subject.split())
    while True:
        stripped = _PREFIX.sub("", subject, count=1)
        if stripped == subject:
            return subject
        subject = stripped


_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"\\]{1,64}@[^@\s<>()\[\],;:\"\\]{1,255}$")


def valid_address(value: str) -> bool:
    value = value.strip()
    if not _ADDRESS.fullmatch(value) or len(value) > 320:
        return False
    domain = value.rsplit("@", 1)[1]
    return "." in domain and not domain.startswith(".") and not domain.endswith(".")


def addresses(value: str) -> list[str]:
    """The lower-cased, plausible addresses of an address header, in order."""
    value = text(value)
    try:
        pairs = getaddresses([value])
    except Exception:  # malformed beyond what the parser copes with
        pairs = []
    found = [a.strip().lower() for _, a in pairs]
    return [a for a in found if valid_address(a)]


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower() or "localhost"


def envelope_address(value: str) -> str:
    """An SMTP envelope address (``<a@b.fi>``, ``a@b.fi`` or ``<>``) lower-cased, "" for the
    null sender."""
    value = text(value).strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value.lower()
