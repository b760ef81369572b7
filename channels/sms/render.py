"""A reply as one SMS or WhatsApp text: plain, sources written in, shortened to fit.

Twilio concatenates the segments of a long SMS itself, so a reply is one API message. A
reply longer than the allowed segments is cut in its body, at a sentence or else a word
boundary, with "…" where it was cut; the source links are kept whole (they are what the
resident can follow for the rest).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from channels.sms.segments import for_sms, measure

DEFAULT_MAX_SEGMENTS = 4
# Twilio's limit for a WhatsApp message body.
WHATSAPP_MAX_CHARS = 1600
MARKER = "…"

# A cut is at a sentence end only when that keeps at least this share of what would fit.
_KEEP_AT_SENTENCE = 0.5
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


@dataclass(frozen=True, slots=True)
class SmsText:
    """What is sent: the text, its encoding ("UTF-8" for WhatsApp, which has no segments)
    and the segments it takes."""

    text: str
    encoding: Literal["GSM-7", "UCS-2", "UTF-8"]
    segments: int
    shortened: bool = False


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _MANY_NEWLINES.sub("\n\n", _TRAILING_SPACE.sub("\n", text)).strip()


def _compose(body: str, links: str) -> str:
    return f"{body}\n\n{links}" if body and links else body or links


def _cut_at(body: str, n: int) -> str:
    return body[:n].rstrip(" \t\n,;:-") + MARKER


def _boundary_cuts(body: str, n: int) -> list[str]:
    """``body`` shortened to about ``n`` characters and the marker, best first: at a sentence
    end when one is near enough, else between words, else exactly at ``n``."""
    cuts: list[str] = []
    ends = [m.end() for m in _SENTENCE_END.finditer(body, 0, n + 1) if m.end() <= n]
    if ends and ends[-1] >= n * _KEEP_AT_SENTENCE:
        sentence = body[: ends[-1]].rstrip()
        cuts += [f"{sentence} {MARKER}", sentence + MARKER]
    if not (n < len(body) and body[n].isspace()):
        head = body[:n]
        space = max(head.rfind(" "), head.rfind("\n"))
        if space >= n * _KEEP_AT_SENTENCE:
            cuts.append(_cut_at(body, space))
    return [*cuts, _cut_at(body, n)]


def fit(body: str, links: str, fits: Callable[[str], bool]) -> tuple[str, bool]:
    """``body`` and ``links`` in one text that ``fits``, and whether anything was left out.

    ``fits`` must be monotone (a longer prefix never fits better). The links are kept whole;
    only when they do not fit even beside the marker are sources dropped from the end.
    """
    full = _compose(body, links)
    if fits(full):
        return full, False
    lines = links.split("\n") if links else []
    while lines and not fits(_compose(MARKER, "\n".join(lines))):
        lines.pop()
        if len(lines) == 1:  # a heading without sources says nothing
            lines = []
    links = "\n".join(lines)
    if fits(_compose(body, links)):
        return _compose(body, links), True
    # The longest body prefix that fits with the marker (binary search: ``fits`` is monotone).
    lo, hi = 0, len(body)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(_compose(_cut_at(body, mid), links)):
            lo = mid
        else:
            hi = mid - 1
    for candidate in _boundary_cuts(body, lo):
        text = _compose(candidate, links)
        if fits(text):
            return text, True
    return _compose(MARKER, links), True


def render_sms(body: str, links: str, max_segments: int = DEFAULT_MAX_SEGMENTS) -> SmsText:
    """One SMS of at most ``max_segments`` segments."""
    if max_segments < 1:
        raise ValueError("an SMS has at least one segment")

    def fits(text: str) -> bool:
        return measure(for_sms(text)).segments <= max_segments

    text, shortened = fit(_tidy(body), _tidy(links), fits)
    text = for_sms(text)
    m = measure(text)
    return SmsText(text, m.encoding, m.segments, shortened)


def render_whatsapp(body: str, links: str, max_chars: int = WHATSAPP_MAX_CHARS) -> SmsText:
    """One WhatsApp message of at most ``max_chars`` characters (no segments, no GSM-7)."""

    def fits(text: str) -> bool:
        return len(text) <= max_chars

    text, shortened = fit(_tidy(body), _tidy(links), fits)
    return SmsText(text, "UTF-8", 1, shortened)
