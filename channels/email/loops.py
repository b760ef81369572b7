"""Mail that must never be answered: auto-replies, bounces, list traffic, our own mail.

Answering any of these starts a mail loop (our auto-answer to an out-of-office reply
draws another out-of-office reply, …), so they are recognised and dropped with a reason.
"""

from __future__ import annotations

import re
from email.message import Message

from channels.email import headers as h

_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})
_SUPPRESS = frozenset({"all", "oof", "autoreply"})
_BOUNCE_LOCALS = frozenset({"mailer-daemon", "postmaster", "mailerdaemon"})
_REPORT_TYPES = frozenset({"message/delivery-status", "message/disposition-notification"})
# Only the auto-reply form of these subjects ("Out of office: …", "Automaattinen
# vastaus: …"): a resident may well ask about "out of office hours parking".
_AUTO_SUBJECT = re.compile(
    r"""(?ix)^\s*(?:
        out\s+of\s+(?:the\s+)?office(?:\s+(?:reply|autoreply|notice|message))?
      | automatic\s+reply | auto(?:matic)?[\s-]?reply | autoresponse | auto[\s-]response
      | away\s+from\s+the\s+office
      | automaattinen\s+vastaus | poissaoloilmoitus | lomavastaaja | poissa\s+toimistolta
      | frånvaro(?:meddelande)? | automatiskt\s+svar | autosvar | inte\s+på\s+kontoret
      | abwesenheitsnotiz
    )\s*(?::|$)"""
)


def _tokens(value: str) -> set[str]:
    return {t.strip().lower() for t in re.split(r"[,;\s]+", value) if t.strip()}


def is_auto_reply(msg: Message) -> str | None:
    auto = h.raw(msg, "auto-submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"auto-submitted ({auto[:40]})"
    if h.raw(msg, "x-autoreply") or h.raw(msg, "x-autorespond"):
        return "auto-reply header"
    if _tokens(h.raw(msg, "x-auto-response-suppress")) & _SUPPRESS:
        return "auto-reply (x-auto-response-suppress)"
    precedence = h.raw(msg, "precedence").strip().lower()
    if precedence in _PRECEDENCE:
        return f"precedence {precedence}"
    if _AUTO_SUBJECT.match(h.normalise_subject(h.decoded(msg, "subject"))):
        return "auto-reply subject"
    return None


def _report_parts(msg: Message) -> bool:
    try:
        for part in msg.walk():
            if part.get_content_type() in _REPORT_TYPES:
                return True
    except Exception:  # a structure walk() trips over: judge by the headers alone
        return False
    return False


def is_bounce(msg: Message, sender: str | None, envelope_from: str | None) -> str | None:
    if envelope_from is None:  # fetched from a mailbox: the delivering server's record
        envelope_from = h.raw(msg, "return-path") or None
    if envelope_from is not None and h.envelope_address(envelope_from) == "":
        return "bounce (null envelope sender)"
    for address in (sender, h.envelope_address(envelope_from or "")):
        if address and address.split("@", 1)[0] in _BOUNCE_LOCALS:
            return "bounce (mailer-daemon sender)"
    try:
        content_type = msg.get_content_type()
    except Exception:
        content_type = ""
    if content_type == "multipart/report" or _report_parts(msg):
        return "bounce (delivery report)"
    return None


def is_list_mail(msg: Message) -> str | None:
    for name in ("list-id", "list-unsubscribe", "list-post"):
        if h.raw(msg, name):
            return f"mailing list ({name})"
    return None


def loop_reason(
    msg: Message, *, sender: str | None, envelope_from: str | None, own_address: str
) -> str | None:
    """Why this message must not be answered, or None for mail a person wrote to us.

    ``envelope_from``: the SMTP MAIL FROM (None when the message came without an
    envelope, from IMAP); ``sender``: the From address, lower-cased.
    """
    own = own_address.lower()
    if sender == own or h.envelope_address(envelope_from or "") == own:
        return "mail from our own address"
    if own and own in h.raw(msg, "x-loop").lower():
        return "mail loop (x-loop)"
    return is_bounce(msg, sender, envelope_from) or is_auto_reply(msg) or is_list_mail(msg)
