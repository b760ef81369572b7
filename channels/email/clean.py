"""What the AI reads of an email: HTML turned into text, quoted history and signature cut.

All pure string work. The cuts err on the side of keeping text: the first line the
resident wrote is never removed, and a cleaned text is never longer than its input.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# ---- HTML → text -----------------------------------------------------------------------

_DROP = frozenset({"script", "style", "title"})
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody",
        "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
_LINK_SCHEMES = ("http://", "https://", "mailto:", "tel:")


class _TextParser(HTMLParser):
    """Collects text lines; a ``<blockquote>`` becomes ``> `` lines, as in plain mail, so
    the quoted history of HTML mail is cut like that of plain mail."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.line_depth = 0
        self.drop = 0
        self.pre = 0
        self.depth = 0
        self.links: list[str | None] = []
        self.link_text: list[str] = []

    def newline(self) -> None:
        text = "".join(self.line)
        text = text.rstrip() if self.pre else re.sub(r"[ \t\f\v]+", " ", text).strip()
        self.lines.append("> " * self.line_depth + text)
        self.line = []
        self.line_depth = self.depth

    def write(self, text: str) -> None:
        if not self.line:
            self.line_depth = self.depth
        self.line.append(text)
        if self.links:
            self.link_text.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            self.drop += 1
            return
        if tag == "body":  # whatever the head left open ends here
            self.drop = 0
            return
        if tag == "br":
            self.newline()
            return
        if tag in _BLOCK:
            if self.line:
                self.newline()
            if tag == "blockquote":
                self.depth += 1
                self.line_depth = self.depth
            elif tag == "pre":
                self.pre += 1
            elif tag == "li":
                self.write("- ")
            elif tag in ("td", "th"):
                self.write(" ")
        elif tag == "a":
            href = dict(attrs).get("href") or None
            self.links.append(href.strip() if href else None)
            self.link_text = []
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt:
                self.write(alt)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            return
        self.handle_starttag(tag, attrs)
        if tag != "br" and tag in _BLOCK:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self.drop = max(0, self.drop - 1)
            return
        if tag == "a" and self.links:
            href = self.links.pop()
            shown = "".join(self.link_text).strip()
            # Keep where a link leads: residents paste links the AI and staff must see.
            if href and href.lower().startswith(_LINK_SCHEMES) and href not in shown:
                target = href[7:] if href.lower().startswith("mailto:") else href
                if target != shown:
                    self.write(f" ({target})" if shown else target)
            return
        if tag in _BLOCK:
            if self.line:
                self.newline()
            if tag == "blockquote":
                self.depth = max(0, self.depth - 1)
                self.line_depth = self.depth
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)
            elif tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"):
                self.lines.append("> " * self.depth)

    def handle_data(self, data: str) -> None:
        if self.drop:
            return
        if self.pre:
            parts = data.split("\n")
            for i, part in enumerate(parts):
                if i:
                    self.newline()
                self.write(part)
        else:
            self.write(data.replace("\r", " ").replace("\n", " "))

    def text(self) -> str:
        if self.line:
            self.newline()
        return _tidy("\n".join(self.lines))


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    out = "\n".join(line if line.strip("> ") else "" for line in lines)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: scripts and styles dropped, link targets kept,
    quoted blocks as ``> `` lines."""
    parser = _TextParser()
    try:
        parser.feed(html)
        parser.close()
        return parser.text()
    except Exception:  # html.parser has asserted on odd markup: fall back to tag stripping
        return _tidy(_without_tags(html))


def _without_tags(html: str) -> str:
    """Text outside ``<…>``, in one pass (a regex backtracks on a flood of unclosed ``<``)."""
    out: list[str] = []
    pos = 0
    while pos < len(html):
        start = html.find("<", pos)
        if start < 0:
            out.append(html[pos:])
            break
        out.append(html[pos:start])
        end = html.find(">", start)
        if end < 0:
            break
        out.append(" ")
        pos = end + 1
    return "".join(out)


# ---- quoted history ----------------------------------------------------------------------

# "On Mon, 1 Jan 2024, Matti <m@x.fi> wrote:", "ma 1.1.2024 klo 10.00 Matti kirjoitti:",
# "Den 1 jan. 2024 kl. 10:00 skrev Anna <a@x.se>:": a writing verb, ending in a colon, and
# a date or an address in it (or the "On"/"Den" opening), so "the teacher wrote:" is not one.
_ATTRIBUTION_VERB = re.compile(r"(?i)\b(?:wrote|kirjoitti|skrev|schrieb|a\s+écrit)\b")
_ATTRIBUTION_OPENING = re.compile(r"(?i)^\s*(?:on|den|le|am)\s")
_SEPARATOR = re.compile(
    r"""(?ix)^\s*(?:
        -{2,}\s*(?:original\s+message|alkuperäinen\s+viesti|ursprungligt\s+meddelande
                |ursprungsmeddelande|originalnachricht)\s*-{2,}
      | _{10,}
    )\s*$"""
)
# An Outlook header block: From/Lähettäjä/Från, then Sent/Date and To/Subject.
_HEADER_FROM = re.compile(r"(?i)^\s*\*?(?:from|lähettäjä|från|von)\s*:\*?\s*\S")
_HEADER_SENT = re.compile(
    r"(?i)^\s*\*?(?:sent|date|lähetetty|päivämäärä|päiväys|skickat|datum|gesendet)\s*:"
)
_HEADER_OTHER = re.compile(
    r"(?i)^\s*\*?(?:to|subject|cc|vastaanottaja|aihe|kopio|till|ämne|kopia|an|betreff)\s*:"
)


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _is_attribution(line: str) -> bool:
    return (
        len(line) <= 400
        and line.rstrip().endswith(":")
        and _ATTRIBUTION_VERB.search(line) is not None
        and (re.search(r"[\d@]", line) is not None or _ATTRIBUTION_OPENING.match(line) is not None)
    )


def attribution_lines(lines: list[str], i: int) -> int:
    """How many lines from ``i`` make an attribution line (0: none; 2: wrapped in two)."""
    if _is_attribution(lines[i]):
        return 1
    if (
        i + 1 < len(lines)
        and len(lines[i + 1].strip()) <= 40
        and not _quoted(lines[i + 1])
        and _is_attribution(f"{lines[i].rstrip()} {lines[i + 1].strip()}")
        and not _ATTRIBUTION_VERB.search(lines[i])
    ):
        return 2
    return 0


def _is_header_block(lines: list[str], i: int) -> bool:
    if not _HEADER_FROM.match(lines[i]):
        return False
    following = [line for line in lines[i + 1 : i + 6] if line.strip()]
    return any(_HEADER_SENT.match(line) for line in following) and any(
        _HEADER_OTHER.match(line) for line in following
    )


def _quote_follows(lines: list[str], i: int) -> bool:
    nxt = next((line for line in lines[i:] if line.strip()), "")
    return _quoted(nxt)


def split_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def first_content(lines: list[str]) -> int:
    """The index of the first non-blank line (``len(lines)`` when all are blank)."""
    return next((i for i, line in enumerate(lines) if line.strip()), len(lines))


def strip_quoted(text: str) -> str:
    """The text without quoted history.

    ``>`` lines go wherever they are (answers written between or below quotes stay), with
    the attribution line that introduces them. An attribution without ``>`` lines after it
    (top-posting clients), an "-----Original Message-----" separator or an Outlook
    From/Sent/To block ends the text, unless it is the very first line (a bare forward).
    """
    lines = split_lines(text)
    first = first_content(lines)
    kept: list[str] = []
    skip = 0
    for i, line in enumerate(lines):
        if skip:
            skip -= 1
            continue
        if _quoted(line):
            continue
        if i > first and (_SEPARATOR.match(line) or _is_header_block(lines, i)):
            break
        span = attribution_lines(lines, i)
        if span:
            if _quote_follows(lines, i + span):
                skip = span - 1
                continue
            if i > first:
                break
        kept.append(line)
    return _tidy("\n".join(kept))


# ---- signatures ----------------------------------------------------------------------------

_DEVICE = (
    r"(?:iphone|ipad|android\S*|samsung\b.{0,30}|galaxy\b.{0,30}|huawei\b.{0,30}"
    r"|xiaomi\b.{0,30}|nokia\b.{0,30}|blackberry\b.{0,30}|mobile(?:\s+device)?|phone"
    r"|smartphone|mobil|telefon)"
)
_MOBILE_FOOTER = re.compile(
    rf"""(?ix)^\s*(?:
        sent\s+from\s+my\s+{_DEVICE}
      | sent\s+from\s+(?:outlook|yahoo\s+mail|gmail|mail)\b(?:\s+(?:for|on)\s+\S+(?:\s+\d+)?)?
      | get\s+outlook\s+for\s+(?:ios|android)
      | lähetetty\s+(?:iphonesta|ipadista|puhelimesta|mobiilista|android\S*|samsung\b.{0, 30})
      | lähetetty\s+.{0, 40}(?:laitteesta|sovelluksesta|puhelimesta|androidista|ios:?sta)
      | hanki\s+outlook\s+for\s+(?:ios|android)
      | skicka(?:t|des)\s+från\s+(?:min|mitt)\s+{_DEVICE}
      | skicka(?:t|des)\s+från\s+(?:outlook|e-post|yahoo\s+mail)\b.{0, 30}
      | hämta\s+outlook\s+för\s+(?:ios|android)
    )[\s.!]*$"""
)


def strip_signature(text: str) -> str:
    """The text without its signature: from a ``-- `` line, or a mobile footer line
    ("Sent from my iPhone", "Lähetetty iPhonesta", "Skickat från min iPhone") on."""
    lines = split_lines(text)
    first = first_content(lines)
    for i in range(first + 1, len(lines)):
        line = lines[i]
        if line.rstrip() == "--" or (len(line) <= 80 and _MOBILE_FOOTER.match(line)):
            lines = lines[:i]
            break
    return _tidy("\n".join(lines))


def clean_text(text: str) -> str:
    """What the AI reads of a plain-text body."""
    return strip_signature(strip_quoted(text))
