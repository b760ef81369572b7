"""The outbound email for a reply: threading headers, subject with the case number, plain
text and an HTML alternative. Pure: everything it depends on is passed in."""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from channels.base import SOURCES_HEADING, sources_as_text, with_absolute_sources
from router.events import ReplyRequested, Role

# Subjects for a reply with no inbound subject to answer (or a message staff start).
DEFAULT_SUBJECT = {
    "fi": "Vastaus viestiisi",
    "sv": "Svar på ditt meddelande",
    "en": "Reply to your message",
}
# What sets our replies' Message-IDs apart (``<reply id>.reply@<our domain>``).
REPLY_ID_MARK = ".reply@"
# A long References header keeps the thread's root and the latest ids (RFC 5322 3.6.4).
MAX_REFERENCES = 10
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


@dataclass(frozen=True, slots=True)
class ThreadHeaders:
    """What a reply needs of the thread it answers (kept in ``email:thread:<root>``)."""

    message_id: str | None
    references: tuple[str, ...] = ()
    subject: str = ""

    def to_state(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "references": list(self.references),
            "subject": self.subject,
        }

    @classmethod
    def from_state(cls, value: dict[str, Any] | None) -> ThreadHeaders | None:
        if not value:
            return None
        mid = value.get("message_id")
        refs = value.get("references")
        subject = value.get("subject")
        return cls(
            message_id=mid if isinstance(mid, str) and mid else None,
            references=tuple(r for r in refs if isinstance(r, str) and r)
            if isinstance(refs, list)
            else (),
            subject=subject if isinstance(subject, str) else "",
        )


def thread_key(thread: str) -> str:
    return f"email:thread:{thread}"


def reply_message_id(reply: ReplyRequested, domain: str) -> str:
    """The reply's Message-ID (without brackets). The same reply always gets the same id:
    a retry after a lost answer from the relay is then the same message to every mail
    system on the way (and to the resident's client), not a second one."""
    local = reply.message_id if _SAFE_ID.fullmatch(reply.message_id) else None
    if local is None:
        local = hashlib.sha256(reply.message_id.encode()).hexdigest()[:32]
    return f"{local}{REPLY_ID_MARK}{domain}"


def _language(reply: ReplyRequested) -> str:
    return reply.language if reply.language in DEFAULT_SUBJECT else "en"


def subject_for(reply: ReplyRequested, thread: ThreadHeaders | None) -> str:
    """``Re: <the resident's subject> [<case number>]``."""
    original = " ".join((thread.subject if thread else "").split())
    case = reply.case_number
    if case:
        original = " ".join(original.replace(f"[{case}]", " ").split())
    subject = f"Re: {original}" if original else DEFAULT_SUBJECT[_language(reply)]
    return f"{subject} [{case}]" if case else subject


def threading(thread: ThreadHeaders | None, root: str | None) -> tuple[str | None, list[str]]:
    """In-Reply-To and References for a reply in the thread: the last inbound id, after the
    ids it referred to (root first). Without stored headers, the thread's root."""
    if thread is None:
        if root and "@" in root and not root.startswith("sha256:"):
            return root, [root]
        return None, []
    refs = list(thread.references)
    last = thread.message_id or (refs[-1] if refs else None)
    if last and last not in refs:
        refs.append(last)
    if len(refs) > MAX_REFERENCES:
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
    return last, refs


def _linked(text: str) -> str:
    """Escaped text with its web addresses as links."""
    out: list[str] = []
    pos = 0
    for found in _URL.finditer(text):
        out.append(html.escape(text[pos : found.start()]))
        url = html.escape(found.group(0))
        out.append(f'<a href="{url}">{url}</a>')
        pos = found.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def html_body(reply: ReplyRequested) -> str:
    """The HTML alternative: paragraphs of the text, then the sources as links."""
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", reply.text) if p.strip()]
    parts = [
        "<p>" + "<br>\n".join(_linked(line) for line in p.split("\n")) + "</p>" for p in paragraphs
    ]
    if reply.sources:
        items = []
        for s in reply.sources:
            title = html.escape(s.title)
            if s.url and re.match(r"(?i)^https?://", s.url):
                items.append(f'<li><a href="{html.escape(s.url)}">{title}</a></li>')
            elif s.url:
                items.append(f"<li>{title}: {html.escape(s.url)}</li>")
            else:
                items.append(f"<li>{title}</li>")
        heading = SOURCES_HEADING.get(reply.language or "", SOURCES_HEADING["en"])
        parts.append(f"<p>{html.escape(heading)}</p>\n<ul>\n" + "\n".join(items) + "\n</ul>")
    lang = reply.language if reply.language and _LANGUAGE_TAG.fullmatch(reply.language) else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head><meta charset="utf-8"></head>\n'
        "<body>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def plain_body(reply: ReplyRequested) -> str:
    sources = sources_as_text(reply)
    text = reply.text.strip()
    return f"{text}\n\n{sources}\n" if sources else f"{text}\n"


def compose_reply(
    reply: ReplyRequested,
    thread: ThreadHeaders | None,
    *,
    from_address: str,
    message_id: str,
    date: datetime,
    public_url: str | None = None,
) -> EmailMessage:
    """The email for ``reply``. ``thread``: the stored headers of the thread it answers
    (None: only the reply's thread root is known)."""
    reply = with_absolute_sources(reply, public_url)
    msg = EmailMessage()
    msg["From"] = from_address
    msg["To"] = reply.recipient.value
    msg["Subject"] = subject_for(reply, thread)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<{message_id}>"
    in_reply_to, references = threading(thread, reply.thread)
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    if reply.role in (Role.AI, Role.SYSTEM):
        # RFC 3834: machine-written mail. The resident's own auto-responders stay silent
        # (no out-of-office loop with our AI), and filters see what it is. A person's reply
        # from the console is ordinary mail and is not marked: it deserves the attention of
        # one, and an out-of-office answer to it tells the agent something.
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(plain_body(reply))
    msg.add_alternative(html_body(reply), subtype="html")
    # After the parts: making the message multipart moves Content-* headers into the first.
    if reply.language and _LANGUAGE_TAG.fullmatch(reply.language):
        msg["Content-Language"] = reply.language
    return msg
