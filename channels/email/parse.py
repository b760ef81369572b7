"""An inbound email (RFC 5322 bytes) → the resident's message, or the reason to drop it.

Pure: no network, no database. Broken MIME is read best effort; only mail with nothing to
act on (no sender to answer, nothing readable) is refused, with a reason.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

from pydantic import ValidationError

from channels.base import InboundRequest, Parsed, Rejected
from channels.email import headers as h
from channels.email.bounces import bounced_reply
from channels.email.clean import clean_text, html_to_text
from channels.email.loops import loop_reason
from router.events import Address, AttachmentRef, Channel, MessageReceived

# SMTP replies the server gives for a refusal (Rejected.status).
TOO_BIG = 552
UNREADABLE = 550

# An event travels through NATS (1 MB a message by default): the text staff see is capped.
MAX_FULL_TEXT = 100_000
# HTML is converted in pure Python: a bigger HTML part is cut before it is read.
MAX_HTML = 1_000_000
MAX_ATTACHMENTS = 100
MAX_SUBJECT = 500
# A thread's References kept: its root and the latest ids (replies refer to no more).
MAX_REFERENCES = 20

_MESSAGE_NS = uuid.UUID("0b5f4c1e-6f0e-4a3c-9a59-3e0c8d2f7a11")
_CASE = re.compile(r"\[([A-Z]{1,6}-[0-9A-Z]{1,12}(?:-[0-9A-Z]{1,12})*)\]")


@dataclass(frozen=True, slots=True)
class EmailRules:
    """What parsing depends on, taken from the settings."""

    own_address: str
    max_bytes: int = 10 * 1024 * 1024
    max_text_chars: int = 4000


def message_id_for(dedup_key: str) -> str:
    """The same email always maps to the same stored message id (as the web chat does)."""
    return uuid.uuid5(_MESSAGE_NS, dedup_key).hex


def case_number(subject: str) -> str | None:
    """A case number carried in a subject as ``[NV-7K4Q-X2M9]``."""
    found = _CASE.search(subject)
    return found.group(1) if found else None


# ---- body and attachments ----------------------------------------------------------------


_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")


def _guess(payload: bytes) -> str:
    """Undeclared (or wrongly declared) 8-bit text: UTF-8 when it has UTF-8 in it, else
    Windows-1252, the usual charset of old Finnish and Swedish mail."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _UTF8_SEQUENCE.search(payload):
        return payload.decode("utf-8", errors="replace")
    return payload.decode("cp1252", errors="replace")


def _decode(payload: bytes, charset: str | None) -> str:
    """Bytes in their declared charset, or a good guess."""
    if charset:
        try:
            info = codecs.lookup(charset.strip().strip('"').lower())
            # "ascii" on 8-bit text is a client's mislabel, not a reason to lose letters.
            if getattr(info, "_is_text_encoding", True) and info.name != "ascii":
                return payload.decode(info.name, errors="replace")
        except (LookupError, UnicodeError, ValueError, TypeError):
            pass
    return _guess(payload)


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a transfer encoding that does not decode: take it as it came
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    return h.text(str(name)).strip()[:255]


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _leaves(msg: Message) -> Iterator[Message]:
    """Every non-multipart part; an attached message (message/rfc822) is one part, not
    opened, so a forwarded mail's text is not taken for the resident's own."""
    stack = [msg]
    while stack:
        part = stack.pop()
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            if _content_type(part).startswith("message/") and part is not msg:
                yield part
                continue
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))
        else:
            yield part


def _size(part: Message) -> int:
    if part.is_multipart():
        try:
            return len(part.as_bytes())
        except Exception:
            return 0
    return len(_payload(part))


@dataclass(frozen=True, slots=True)
class Body:
    text: str
    attachments: tuple[AttachmentRef, ...]


def read_body(msg: Message) -> Body:
    """The resident's text (plain parts, else HTML parts as text) and the files."""
    plain: list[str] = []
    html: list[str] = []
    files: list[Message] = []
    for part in _leaves(msg):
        kind = _content_type(part)
        attached = _disposition(part) == "attachment" or bool(_filename(part))
        # A multipart without parts (no boundary) is read as the text it holds.
        if (kind == "text/plain" and not attached) or kind.startswith("multipart/"):
            plain.append(_decode(_payload(part), _charset(part)))
        elif kind == "text/html" and not attached:
            html.append(_decode(_payload(part), _charset(part)))
        elif part is not msg or attached:
            files.append(part)
    if plain:
        text = "\n\n".join(p.strip("\r\n") for p in plain)
        # Alternative HTML versions of the text are not files the resident sent.
        files = [f for f in files if _content_type(f) != "text/html" or _filename(f)]
    else:
        text = "\n\n".join(html_to_text(p[:MAX_HTML]) for p in html)
    attachments = tuple(
        AttachmentRef(
            filename=_filename(part),
            content_type=h.text(_content_type(part))[:255],
            size=_size(part),
        )
        for part in files[:MAX_ATTACHMENTS]
    )
    return Body(text=h.text(text).replace("\r\n", "\n").strip(), attachments=attachments)


# ---- the message --------------------------------------------------------------------------


def _sender(msg: Message, envelope_from: str | None) -> str | None:
    found = h.addresses(h.raw(msg, "from"))
    if found:
        return found[0]
    envelope = h.envelope_address(envelope_from or "")
    return envelope if h.valid_address(envelope) else None


def parse_email(request: InboundRequest, rules: EmailRules) -> Parsed:
    """The resident's message in ``request.body``; ``Parsed(ignored=…)`` for mail that
    must not be answered (a ``DeliveryReported`` for a bounce of one of our replies).
    Raises ``Rejected`` (status 552 too big, 550 unreadable)."""
    body = request.body
    if len(body) > rules.max_bytes:
        raise Rejected(
            f"message too big ({len(body)} bytes; the limit is {rules.max_bytes})", TOO_BIG
        )
    try:
        msg = email.message_from_bytes(body, policy=email.policy.default)
    except Exception as e:  # the parser is lenient; this is a last resort
        raise Rejected("the message could not be read as email", UNREADABLE) from e
    envelope_from = request.headers.get("mail-from")
    sender = _sender(msg, envelope_from)
    reason = loop_reason(
        msg, sender=sender, envelope_from=envelope_from, own_address=rules.own_address
    )
    if reason:
        # Never answered; a report on one of our replies marks that reply undelivered.
        report = bounced_reply(msg, h.domain_of(rules.own_address)) if "bounce" in reason else None
        return Parsed(items=(report,)) if report else Parsed(ignored=reason)
    if sender is None:
        raise Rejected("no sender address to answer", UNREADABLE)

    own_id = h.normalise_id(h.raw(msg, "message-id"))
    references = h.id_list(" ".join(h.raw_all(msg, "references")))
    if len(references) > MAX_REFERENCES:
        references = references[:1] + references[-(MAX_REFERENCES - 1) :]
    in_reply_to = h.id_list(h.raw(msg, "in-reply-to"))
    provider_id = h.short_id(own_id) if own_id else h.raw_hash(body)
    root = references[0] if references else in_reply_to[0] if in_reply_to else provider_id
    thread = h.short_id(root)

    subject = h.normalise_subject(h.decoded(msg, "subject"))[:MAX_SUBJECT]
    content = read_body(msg)
    full_text = content.text[:MAX_FULL_TEXT]
    text = clean_text(full_text) or full_text.strip() or subject
    if not text and not content.attachments:
        raise Rejected("the message has no text", UNREADABLE)

    metadata = {"subject": subject}
    if own_id:
        metadata["message_id"] = own_id
    if references:
        metadata["references"] = " ".join(references)
    if in_reply_to:
        metadata["in_reply_to"] = in_reply_to[0]
    case = case_number(subject)
    if case:
        metadata["case_number"] = case
    dedup_key = f"{Channel.EMAIL.value}:{provider_id}"
    try:
        item = MessageReceived(
            message_id=message_id_for(dedup_key),
            channel=Channel.EMAIL,
            provider_message_id=provider_id,
            sender=Address(channel=Channel.EMAIL, value=sender),
            text=text[: rules.max_text_chars],
            full_text=full_text or None,
            attachments=content.attachments,
            thread=thread,
            metadata=metadata,
        )
    except ValidationError as e:
        raise Rejected("the message could not be read as email", UNREADABLE) from e
    return Parsed(items=(item,))
