"""SMS length rules: GSM-7 or UCS-2, and how many segments a text takes.

A text goes as GSM-7 when every character is in the GSM 03.38 basic set or its extension
table (extension characters take two septets: an escape and the character); otherwise the
whole message goes as UCS-2 (UTF-16 code units; a character outside the BMP, e.g. an emoji,
takes two). One segment holds 160 septets or 70 units; a longer text is split into parts
of 153 or 67 (the rest is the concatenation header), and a character is never split
between two parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 basic character set (without the escape, 0x1B). Finnish and Swedish letters
# (ä ö å Ä Ö Å) are in it, so most Finnish and Swedish text goes as GSM-7.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

LIMITS: dict[Encoding, tuple[int, int]] = {
    # (a single segment, each part of a concatenated message)
    "GSM-7": (160, 153),
    "UCS-2": (70, 67),
}

# Typographic characters AI answers are full of, and their GSM-7 spelling (what Twilio's
# "smart encoding" does too): one curly quote would otherwise make the whole message UCS-2
# and cut its room per segment from 153 to 67 characters.
SMART_REPLACEMENTS = {
    "‘": "'",
    "’": "'",
    "‚": "'",
    "‛": "'",
    "′": "'",
    "“": '"',
    "”": '"',
    "„": '"',
    "‟": '"',
    "″": '"',
    "«": '"',
    "»": '"',
    "‐": "-",
    "‑": "-",
    "‒": "-",
    "–": "-",
    "—": "-",
    "―": "-",
    "−": "-",
    "•": "-",
    "…": "...",
    "\t": " ",
    "\u00a0": " ",
    "\u2007": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u200b": "",
    "\u200c": "",
    "\u200d": "",
    "\ufeff": "",
}
_SMART = str.maketrans(SMART_REPLACEMENTS)


@dataclass(frozen=True, slots=True)
class Measure:
    encoding: Encoding
    # Septets (GSM-7) or UTF-16 code units (UCS-2).
    units: int
    segments: int


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _unit_sizes(text: str, encoding: Encoding) -> list[int]:
    if encoding == "GSM-7":
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def measure(text: str) -> Measure:
    """The encoding Twilio sends ``text`` in and the segments it takes (an empty text is
    still one message)."""
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    single, part = LIMITS[encoding]
    if units <= single:
        return Measure(encoding, units, 1)
    segments, room = 1, part
    for size in sizes:
        if size > room:
            segments, room = segments + 1, part
        room -= size
    return Measure(encoding, units, segments)


def for_sms(text: str) -> str:
    """``text`` as it is best sent: with typographic characters in their GSM-7 spelling when
    that makes the whole text GSM-7, else unchanged (UCS-2 carries them as they are)."""
    plain = text.translate(_SMART)
    return plain if is_gsm7(plain) else text
