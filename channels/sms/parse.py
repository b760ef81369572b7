"""Twilio's webhook forms as inbound items (pure).

An incoming message (``MessageSid``, ``From``, ``Body``, ``NumMedia``/``MediaUrlN``…) is a
``MessageReceived`` on SMS or, when ``From`` is ``whatsapp:+358…``, on WhatsApp; the
resident's address is the bare number on both, so the same phone is recognisable across
them. STOP-like keywords are opt-outs and START-like ones opt-ins, not messages (but "yes"
is also an answer to a question, so it is both an opt-in and a message). A status
callback (``MessageSid``, ``MessageStatus``, ``ErrorCode``) is a ``DeliveryReported``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlsplit

from pydantic import ValidationError

from channels.base import OptOut, Parsed, Rejected
from router.events import (
    Address,
    AttachmentRef,
    Channel,
    DeliveryReported,
    DeliveryStatus,
    MessageReceived,
)

WHATSAPP_PREFIX = "whatsapp:"
# Twilio sends about 20 fields, a few more for WhatsApp and up to 10 media.
MAX_FIELDS = 200
MAX_MEDIA = 10

# Twilio's own opt-out and opt-in keywords (the whole message, any case).
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
# Opt-in words residents also write as an ordinary answer: passed on as a message too.
ANSWER_WORDS = frozenset({"YES"})

# Message SIDs are SM/MM/IM + 32 hex digits; anything else would be no dedup key.
_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")

_STATUSES = {s.value: s for s in DeliveryStatus}
# What the common delivery error codes mean (https://www.twilio.com/docs/api/errors).
ERROR_CODES = {
    "21610": "the recipient has opted out (STOP)",
    "21211": "invalid 'To' number",
    "21408": "sending to this region is not enabled",
    "21614": "'To' is not a mobile number",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "filtered by the carrier",
    "30008": "unknown error",
    "63016": "outside the WhatsApp 24-hour window",
}


def form_fields(body: bytes) -> list[tuple[str, str]]:
    """The form's fields, strictly: UTF-8, well-formed ``name=value`` pairs only."""
    try:
        text = body.decode("utf-8")
        return parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError as e:  # UnicodeDecodeError is a ValueError
        raise Rejected(f"bad form data: {e}") from None


def signed_fields(body: bytes) -> list[tuple[str, str]]:
    """The fields as signature checking reads them: leniently, never raising (a body that is
    not a proper form simply fails the signature or, once signed, the strict parse)."""
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, errors="replace")


def as_form(fields: Sequence[tuple[str, str]]) -> dict[str, str]:
    form: dict[str, str] = {}
    for name, value in fields:
        if name in form:
            raise Rejected(f"bad form data: the field {name!r} appears twice")
        form[name] = value
    return form


def _required(form: Mapping[str, str], name: str, *, blank_ok: bool = False) -> str:
    if name not in form or not (blank_ok or form[name]):
        raise Rejected(f"missing {name}")
    return form[name]


def _sid(form: Mapping[str, str]) -> str:
    sid = _required(form, "MessageSid")
    if not _SID.fullmatch(sid):
        raise Rejected("MessageSid is not a Twilio message SID")
    return sid


def address_of(value: str) -> Address:
    """``+358…`` (SMS) or ``whatsapp:+358…`` as the resident's address; the number alone on
    both channels."""
    channel, number = Channel.SMS, value
    if value.lower().startswith(WHATSAPP_PREFIX):
        channel, number = Channel.WHATSAPP, value[len(WHATSAPP_PREFIX) :]
    elif ":" in value:
        raise Rejected(f"not an SMS or WhatsApp address: {value[:40]!r}")
    try:
        return Address(channel=channel, value=number)
    except ValidationError:
        raise Rejected(f"not a phone number: {value[:40]!r}") from None


def _word(body: str) -> str:
    return body.strip().rstrip(".!").upper()


def _keyword(form: Mapping[str, str]) -> bool | None:
    """True: an opt-out; False: an opt-in; None: a message. Twilio's ``OptOutType`` (set
    when Advanced Opt-Out handled the keyword) decides; else the standard keywords."""
    kind = form.get("OptOutType", "").strip().upper()
    if kind == "STOP":
        return True
    if kind == "START":
        return False
    word = _word(form.get("Body", ""))
    if word in OPT_OUT_WORDS:
        return True
    if word in OPT_IN_WORDS:
        return False
    return None


def _attachments(form: Mapping[str, str]) -> tuple[tuple[AttachmentRef, ...], dict[str, str]]:
    raw = form.get("NumMedia", "0").strip() or "0"
    if not raw.isdigit() or not raw.isascii():
        raise Rejected("NumMedia is not a number")
    refs: list[AttachmentRef] = []
    urls: dict[str, str] = {}
    for i in range(min(int(raw), MAX_MEDIA)):
        url = form.get(f"MediaUrl{i}", "")
        if not url:
            continue
        content_type = form.get(f"MediaContentType{i}", "") or "application/octet-stream"
        name = urlsplit(url).path.rstrip("/").rpartition("/")[2]
        try:
            refs.append(AttachmentRef(filename=name[:255], content_type=content_type[:255]))
        except ValidationError:
            raise Rejected(f"bad MediaContentType{i}") from None
        urls[f"media_url_{i}"] = url
    return tuple(refs), urls


def parse_message(form: Mapping[str, str]) -> Parsed:
    """An incoming message: a ``MessageReceived``, or an ``OptOut`` for STOP/START (both
    for YES)."""
    if "MessageStatus" in form and "Body" not in form:
        return parse_status(form)
    sid = _sid(form)
    sender = address_of(_required(form, "From"))
    body = _required(form, "Body", blank_ok=True)
    if form.get("OptOutType", "").strip().upper() == "HELP":
        return Parsed(ignored="HELP keyword (Twilio answers it)")
    keyword = _keyword(form)
    opt = (
        OptOut(address=sender, opted_out=keyword, provider_message_id=sid)
        if keyword is not None
        else None
    )
    if opt is not None and (opt.opted_out or _word(body) not in ANSWER_WORDS):
        return Parsed(items=(opt,))
    attachments, media = _attachments(form)
    metadata = {"to": form["To"]} if form.get("To") else {}
    metadata.update(media)
    if form.get("ProfileName"):
        metadata["profile_name"] = form["ProfileName"]
    try:
        message = MessageReceived(
            channel=sender.channel,
            provider_message_id=sid,
            sender=sender,
            text=body,
            attachments=attachments,
            metadata=metadata,
        )
    except ValidationError as e:
        raise Rejected(f"not a message: {e.error_count()} invalid fields") from None
    return Parsed(items=(message,) if opt is None else (opt, message))


def parse_status(form: Mapping[str, str]) -> Parsed:
    """A status callback for a reply sent earlier: a ``DeliveryReported``, or ignored when
    the status is an intermediate one (accepted, sending, scheduled…)."""
    sid = _sid(form)
    word = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not word:
        raise Rejected("missing MessageStatus")
    status = _STATUSES.get(word)
    if status is None:
        return Parsed(ignored=f"status {word[:40]!r} is not recorded")
    to, sender = form.get("To", ""), form.get("From", "")
    whatsapp = any(a.lower().startswith(WHATSAPP_PREFIX) for a in (to, sender))
    error = None
    code = form.get("ErrorCode", "").strip()
    if code and code != "0" and status in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED):
        meaning = ERROR_CODES.get(code) or form.get("ErrorMessage", "").strip()
        error = f"Twilio error {code[:20]}" + (f": {meaning[:200]}" if meaning else "")
    report = DeliveryReported(
        channel=Channel.WHATSAPP if whatsapp else Channel.SMS,
        provider_message_id=sid,
        status=status,
        error=error,
    )
    return Parsed(items=(report,))
