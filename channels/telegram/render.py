"""A reply as Telegram carries it, pure: plain text in parts of at most 4096 characters.

No ``parse_mode`` is ever sent, so nothing in an answer is read as markup. Telegram counts
a message's length in UTF-16 code units (an emoji outside the Basic Multilingual Plane is
two), so parts are measured that way and cut at a paragraph, line or word where one is
near enough to the limit.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from channels.base import sources_as_text, with_absolute_sources
from router.events import ReplyRequested

MAX_UTF16 = 4096
# A boundary earlier than this share of the limit wastes too much of a part.
_MIN_FILL = 0.5
_ZWJ = "\u200d"
_JOINERS = frozenset((_ZWJ, "\ufe0e", "\ufe0f"))


@dataclass(frozen=True, slots=True)
class TelegramReply:
    chat_id: int | str
    parts: tuple[str, ...]


def render_reply(
    reply: ReplyRequested, public_url: str | None, limit: int = MAX_UTF16
) -> TelegramReply:
    sourced = with_absolute_sources(reply, public_url)
    text = "\n\n".join(p for p in (reply.text.strip(), sources_as_text(sourced)) if p)
    return TelegramReply(chat_id=chat_id_of(reply.recipient.value), parts=split(text, limit))


def chat_id_of(value: str) -> int | str:
    """Telegram takes a numeric chat id as an integer (``@channel`` names as strings)."""
    return int(value) if value.lstrip("-").isdigit() else value


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split(text: str, limit: int = MAX_UTF16) -> tuple[str, ...]:
    """``text`` in parts of at most ``limit`` UTF-16 code units, none empty."""
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if utf16_len(rest) <= limit:
            parts.append(rest)
            break
        cut = _cut(rest, limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return tuple(parts)


def _cut(text: str, limit: int) -> int:
    """Where to end the next part: its end index in ``text`` (code points)."""
    fits = _fitting_prefix(text, limit)
    window = text[:fits]
    floor = int(fits * _MIN_FILL)
    for boundary in ("\n\n", "\n"):
        at = window.rfind(boundary)
        if at > floor:
            return at
    # The last whitespace before a word that does not fit whole.
    for at in range(fits, floor, -1):
        if text[at].isspace():
            return at
    # One long word (a URL): cut it, but not between a character and its combining marks.
    at = max(fits, 1)
    while at > 1 and (
        unicodedata.combining(text[at]) or text[at] in _JOINERS or text[at - 1] == _ZWJ
    ):
        at -= 1
    return at


def _fitting_prefix(text: str, limit: int) -> int:
    """The longest prefix (in code points) of at most ``limit`` UTF-16 code units."""
    units = 0
    for i, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)
