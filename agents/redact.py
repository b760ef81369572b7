"""Personal data out of anything sent to an external model (pure: no I/O, no state).

``redact(text)`` replaces each piece of personal data with a typed, numbered placeholder in
English capitals that reads the same in every language: ``[HETU_1]``, ``[PHONE_1]``,
``[EMAIL_1]``, ``[IBAN_1]``, ``[CARD_1]``, ``[ADDRESS_1]``, ``[CASE_NUMBER_1]``. Numbers count
per kind in order of appearance within one text, and the same value written twice (``040 123
4567`` and ``+358401234567``) gets the same placeholder, so the model can still tell "the same
number again" from "another number". ``found`` counts occurrences per kind (for the audit).

What is found (and why it is shaped so):

- ``hetu``: a Finnish personal identity code, DDMMYY + century sign (``+``, ``-``, ``A``–``F``,
  ``U``–``Y``, the 2023 signs included) + three digits + check character, in any letter case,
  with typographic dashes and spaces around a dash. Anything of that shape is redacted whether
  or not its check character is right: a resident's typo is still that resident's code. Forms
  that collide with sums and ranges (``+``, a spaced dash) also need a plausible date, and a
  code written without its sign only counts with a valid check letter.
- ``email``: addresses, also the ``name(at)example.fi`` form Finnish sites use.
- ``iban``: a known country code with that country's length (typos included), or any other
  shape with a valid mod-97 checksum; with or without spaces.
- ``card``: 13–19 digits passing the Luhn check.
- ``case_number``: our own ``NV-XXXX-XXXX`` (any configured prefix), municipal register
  numbers (``Dnro 123/2024``, ``dnr 45/00.01.02/2023``, ``HEL 2024-001234``) and customer,
  invoice and reference numbers introduced by their word (``asiakasnumero``, ``viitenumero``,
  ``kundnummer``, ``invoice number``…). Only the number goes, the word stays: "Dnro
  [CASE_NUMBER_1]" still tells the model what it is.
- ``phone``: Finnish numbers (``040 123 4567``, ``09 123 4567``, ``+358 40 123 4567``,
  ``00358…``) and international ``+CC…`` ones.
- ``address``: a Finnish or Swedish street name (``-katu``, ``-tie``, ``-gatan``, ``-vägen``…,
  also inflected: ``Kotikadulla 5``) or an English one (``12 Main Street``) with its house
  number, staircase and flat; the postcode and town stay.

What stays, because answers need it and it identifies nobody: emergency and service numbers
(112, 116 117, 116 111 and every other number not starting with 0 or +; the free and premium
0800/0600/0700 numbers), times and opening hours (``8-16``), dates, years, postcodes, prices
and amounts, service and place names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

KINDS: tuple[str, ...] = ("hetu", "email", "iban", "case_number", "card", "phone", "address")
# What the LLM guard and prompt rely on: ``[KIND_N]``, the kind in capitals.
PLACEHOLDER = re.compile(r"\[(HETU|EMAIL|IBAN|CASE_NUMBER|CARD|PHONE|ADDRESS)_([0-9]+)\]")

# Rounds of all detectors: a later round only finds what an earlier replacement uncovered.
_MAX_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    found: dict[str, int]


# A span of ``text`` to replace, and the normalised value that numbers its placeholder.
Span = tuple[int, int, str]
Detector = Callable[[str, str], Iterator[Span]]

_ALNUM_BEFORE = r"(?<![^\W_])"
_ALNUM_AFTER = r"(?![^\W_])"
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2212"


def _boundary_after(text: str, end: int) -> bool:
    return end >= len(text) or not text[end].isalnum()


# ---- henkilötunnus ------------------------------------------------------------------------

HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_HETU_CENTURY = {"+": 1800, "-": 1900, "U": 1900, "V": 1900, "W": 1900, "X": 1900, "Y": 1900}
_HETU_CENTURY |= dict.fromkeys("ABCDEF", 2000)
_HETU = re.compile(
    _ALNUM_BEFORE + r"([0-9]{6})"
    rf"(?:([{_DASHES}A-FU-Ya-fu-y+])|[ \t]([{_DASHES}])[ \t]?|([{_DASHES}])[ \t])"
    r"([0-9]{3})([0-9A-Za-z])" + _ALNUM_AFTER
)
_HETU_SIGNLESS = re.compile(_ALNUM_BEFORE + r"([0-9]{6})([0-9]{3})([A-Ya-y])" + _ALNUM_AFTER)


def hetu_check_char(birth: str, individual: str) -> str:
    """The check character of DDMMYY + NNN."""
    return HETU_CHECK[int(birth + individual) % 31]


def _plausible_date(ddmmyy: str) -> bool:
    day, month = int(ddmmyy[:2]), int(ddmmyy[2:4])
    return 1 <= day <= 31 and 1 <= month <= 12


def hetu_is_valid(code: str) -> bool:
    """A well-formed personal identity code with a real date and the right check character."""
    from datetime import date

    code = code.strip().upper()
    if len(code) != 11 or code[6] not in _HETU_CENTURY or not code[:6].isdigit():
        return False
    if not code[7:10].isdigit() or not code[:6].isascii() or not code[7:10].isascii():
        return False
    try:
        date(_HETU_CENTURY[code[6]] + int(code[4:6]), int(code[2:4]), int(code[:2]))
    except ValueError:
        return False
    return code[10] == hetu_check_char(code[:6], code[7:10])


def _hetu(text: str, _prefix: str) -> Iterator[Span]:
    taken: list[tuple[int, int]] = []
    for m in _HETU.finditer(text):
        birth, tight, spaced_a, spaced_b, individual, check = m.groups()
        sign = (tight or spaced_a or spaced_b).upper()
        sign = "-" if sign in _DASHES else sign
        if (sign == "+" or tight is None) and not _plausible_date(birth):
            continue
        taken.append((m.start(), m.end()))
        yield m.start(), m.end(), f"{birth}{sign}{individual}{check.upper()}"
    for m in _HETU_SIGNLESS.finditer(text):
        birth, individual, check = m.groups()
        if any(s < m.end() and m.start() < e for s, e in taken):
            continue
        if _plausible_date(birth) and check.upper() == hetu_check_char(birth, individual):
            yield m.start(), m.end(), f"{birth}?{individual}{check.upper()}"


# ---- e-mail -------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.%+\-])[\w.%+\-]{1,64}"
    r"(?:@|[ ]?[(\[{](?:at|ät|a)[)\]}][ ]?)"
    r"(?:[\w\-]{1,63}\.){1,8}[^\W\d_]{2,24}(?![\w\-])",
    re.IGNORECASE,
)
_EMAIL_AT = re.compile(r"[ ]?[(\[{](?:at|ät|a)[)\]}][ ]?", re.IGNORECASE)


def _email(text: str, _prefix: str) -> Iterator[Span]:
    for m in _EMAIL.finditer(text):
        value = m.group()
        if "@" not in value:
            value = _EMAIL_AT.sub("@", value, count=1)
        yield m.start(), m.end(), value.lower()


# ---- IBAN ---------------------------------------------------------------------------------

# ISO 13616 lengths: a known country with its length is an IBAN even with a typo in it.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_START = re.compile(_ALNUM_BEFORE + r"[A-Za-z]{2}[0-9]{2}")
_IBAN_BODY = re.compile(r"(?:[ \u00a0]?[0-9A-Z]){1,30}")


def iban_is_valid(iban: str) -> bool:
    """The ISO 7064 mod-97 check (spaces ignored)."""
    compact = re.sub(r"[ \u00a0]", "", iban).upper()
    if not 15 <= len(compact) <= 34 or not compact.isascii() or not compact.isalnum():
        return False
    if not (compact[:2].isalpha() and compact[2:4].isdigit()):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _iban_at(text: str, start: int, head_end: int) -> int | None:
    """The end of an IBAN starting at ``start``, or None.

    Accepted: a valid checksum, or (typos are personal data too) a known country's length
    with all-digit account part, the Finnish one also a digit short or long.
    """
    body = _IBAN_BODY.match(text, head_end)
    stop = body.end() if body else head_end
    # The end of each prefix of the candidate, by its length without spaces.
    ends: dict[int, int] = {4: head_end}
    length = 4
    for i in range(head_end, stop):
        if text[i].isalnum():
            length += 1
            ends[length] = i + 1
    country = text[start : start + 2].upper()
    if country == "RF":  # a creditor reference (same checksum): a case number
        return None
    known = IBAN_LENGTHS.get(country)
    if known is None:
        lengths = list(range(34, 14, -1))
    else:
        lengths = [known, known + 1, known - 1] if country == "FI" else [known]
    for n in lengths:
        end = ends.get(n)
        if end is None or not _boundary_after(text, end):
            continue
        compact = re.sub(r"[ \u00a0]", "", text[start:end])
        if iban_is_valid(compact) or (known is not None and compact[4:].isdigit()):
            return end
    return None


def _iban(text: str, _prefix: str) -> Iterator[Span]:
    pos = 0
    while m := _IBAN_START.search(text, pos):
        end = _iban_at(text, m.start(), m.end())
        if end is None:
            pos = m.start() + 1
            continue
        yield m.start(), end, re.sub(r"[ \u00a0]", "", text[m.start() : end]).upper()
        pos = end


# ---- payment cards ------------------------------------------------------------------------

_CARD = re.compile(r"(?<![^\W_]|[+\-])[1-9](?:[ \-]?[0-9]){12,18}")


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_is_valid(digits: str) -> bool:
    if not digits.isascii() or not digits.isdigit():
        return False
    odd = sum(int(c) for c in digits[-1::-2])
    even = sum(_LUHN_DOUBLED[int(c)] for c in digits[-2::-2])
    return (odd + even) % 10 == 0


def _card(text: str, _prefix: str) -> Iterator[Span]:
    pos = 0
    while m := _CARD.search(text, pos):
        digits = ""
        # Each end after a digit that a non-alphanumeric character follows, longest first.
        ends: list[tuple[int, str]] = []
        for i in range(m.start(), m.end()):
            if text[i].isdigit():
                digits += text[i]
                if len(digits) >= 13 and _boundary_after(text, i + 1):
                    ends.append((i + 1, digits))
        found = next(((end, d) for end, d in reversed(ends) if luhn_is_valid(d)), None)
        if found is None:
            pos = m.start() + 1
            continue
        yield m.start(), found[0], found[1]
        pos = found[0]


# ---- case, customer and invoice numbers ---------------------------------------------------

_CROCKFORD = "[0-9A-Za-z]"
_CASE_GENERIC = re.compile(
    r"(?<![^\W_]|-)[A-Z]{1,6}-[0-9A-Z]{4}-[0-9A-Z]{4}(?![^\W_]|-)",
)
_CASE_SHAPES = re.compile(
    # Finnish register numbers with the archive classification: 123/00.01.02/2024.
    _ALNUM_BEFORE + r"(?:[A-ZÅÄÖ]{2,5}[ :/]?)?[0-9]{1,6}/[0-9]{2}(?:\.[0-9]{2}){1,3}/[0-9]{4}"
    # Helsinki's asianumero (HEL 2024-001234), and ESP/123/2024 style ones.
    r"|" + _ALNUM_BEFORE + r"[A-ZÅÄÖ]{2,4} ?[0-9]{4}-[0-9]{5,6}"
    r"|"
    + _ALNUM_BEFORE
    + r"[A-ZÅÄÖ]{2,5}/[0-9]{1,6}/[0-9]{4}"
    + _ALNUM_AFTER
    # An RF creditor reference (ISO 11649) on a Finnish bill: it points at one payer.
    + r"|"
    + _ALNUM_BEFORE
    + r"RF[0-9]{2}(?:[ ]?[0-9]{1,4}){1,6}"
    + _ALNUM_AFTER,
)
_CASE_WORDS = (
    # fi
    r"dnro|dno|diaarinumero|diaarinro|diaari|asianumero|asianro|asian numero|asiakasnumero"
    r"|asiakasnro|asiakas nro|asiakastunnus|asiakkuusnumero|laskunumero|laskun numero"
    r"|laskun nro|viitenumero|viitenro|viite|viitteellä|sopimusnumero|hakemusnumero"
    r"|hakemuksen numero|päätösnumero|päätöksen numero|tilausnumero|käyttöpaikkanumero"
    r"|käyttöpaikan numero|lupanumero|luvan numero|rekisterinumero|tapausnumero"
    # sv
    r"|dnr|diarienummer|diarienr|ärendenummer|ärendenr|ärende nr|kundnummer|kundnr"
    r"|kundnumret|fakturanummer|fakturanr|fakturans nummer|referensnummer|referensnr"
    r"|referens|ref\. ?nr|avtalsnummer|ordernummer|ansökningsnummer|beslutsnummer"
    r"|ocr-nummer|ocr|registreringsnummer"
    # en
    r"|case number|case no\.?|case ref|case id|reference number|reference no\.?"
    r"|reference|ref\.?|customer number|customer no\.?|customer id|client number"
    r"|invoice number|invoice no\.?|invoice|bill number|account number|account no\.?"
    r"|order number|order no\.?|application number|application no\.?|file number"
)
# Finnish case endings and possessive suffixes, Swedish definite forms: asiakasnumeroni,
# viitenumerolla, kundnumret, fakturanumret.
_CASE_ENDINGS = r"(?:ni|si|mme|nne|n|a|ä|lla|llä|lle|lta|ltä|na|nä|ksi|ssa|ssä|t|et|en|s)?"
_CASE_KEYWORD = re.compile(
    _ALNUM_BEFORE + rf"(?:{_CASE_WORDS}){_CASE_ENDINGS}(?![^\W_])"
    r"[ \t]*(?:[:#=]|n:o|nro\.?|nr\.?|no\.?|number|numero|nummer)?[ \t]*"
    r"(?:(?:on|oli|onkin|är|var|is|was)[ \t]*[:#]?[ \t]*)?"
    r"(?P<value>(?:(?-i:[A-ZÅÄÖ]{1,5})[ :/\-]?)?#?[0-9]"
    r"(?:[0-9A-Za-z]|[./:\-](?=[0-9A-Za-z])|[ ](?=[0-9]))*)",
    re.IGNORECASE,
)


@cache
def _own_case_number(prefix: str) -> re.Pattern[str]:
    return re.compile(
        _ALNUM_BEFORE + rf"{re.escape(prefix)}(?P<sep>[- ]?){_CROCKFORD}{{4}}"
        rf"(?P=sep){_CROCKFORD}{{4}}" + _ALNUM_AFTER,
        re.IGNORECASE,
    )


def _case_number(text: str, prefix: str) -> Iterator[Span]:
    spans: list[Span] = []

    def add(start: int, end: int) -> None:
        if not any(s < end and start < e for s, e, _ in spans):
            spans.append((start, end, re.sub(r"\s", "", text[start:end]).upper()))

    for m in _own_case_number(prefix).finditer(text):
        # Joined by spaces (or nothing), words would pass: then it needs a digit.
        if m.group("sep") == "-" or any(c.isdigit() for c in m.group()[len(prefix) :]):
            add(m.start(), m.end())
    for m in _CASE_GENERIC.finditer(text):
        if any(c.isdigit() for c in m.group().split("-", 1)[1]):
            add(m.start(), m.end())
    for m in _CASE_SHAPES.finditer(text):
        add(m.start(), m.end())
    for m in _CASE_KEYWORD.finditer(text):
        if _boundary_after(text, m.end("value")):
            add(m.start("value"), m.end("value"))
    yield from sorted(spans)


# ---- phone numbers ------------------------------------------------------------------------

_PHONE_GROUP = r"\+?(?:\([0-9]{1,4}\)[ \u00a0\-]?)?[0-9]+"
_PHONE_RUN = re.compile(_ALNUM_BEFORE + _PHONE_GROUP + r"(?:[ \u00a0\-]" + _PHONE_GROUP + ")*")
_PHONE_GROUP_RE = re.compile(_PHONE_GROUP)
_DATE_LIKE = re.compile(r"[0-9]{1,2}-[0-9]{1,2}-[0-9]{2,4}")
# Free and premium service numbers name an organisation, never a person.
_SERVICE_PREFIXES = ("0800", "0600", "0700", "358800", "358600", "358700")
_DOMESTIC_DIGITS = (7, 11)  # with the leading 0
_INTERNATIONAL_DIGITS = (8, 15)  # after + or 00 (E.164 allows 15)


def _phone_digits(group: str) -> str:
    return re.sub(r"[^0-9]", "", group.replace("(0)", ""))


def _phone_in(text: str, groups: list[re.Match[str]], first: int) -> tuple[int, str] | None:
    """The longest phone number starting at group ``first``: (last group, normalised)."""
    head = groups[first].group()
    digits = _phone_digits(head)
    if head.startswith("+"):
        international = True
    elif digits.startswith("00"):
        international, digits = True, digits[2:]
    elif len(digits) >= 2 and digits[0] == "0" and digits[1] != "0":
        international = False
    else:
        return None
    low, high = _INTERNATIONAL_DIGITS if international else _DOMESTIC_DIGITS
    best: tuple[int, str] | None = None
    for last in range(first, len(groups)):
        if last > first:
            group = groups[last].group()
            if group.startswith("+"):
                break
            digits += _phone_digits(group)
        if len(digits) > high:
            break
        if international and digits[:1] in ("", "0"):
            continue
        if len(digits) >= low and _boundary_after(text, groups[last].end()):
            best = last, digits
    if best is None:
        return None
    last, digits = best
    normalised = digits if international else "358" + digits[1:]
    if normalised.startswith("3580"):  # +358 040…: the trunk 0 written by mistake
        normalised = "358" + normalised[4:]
    span = text[groups[first].start() : groups[last].end()]
    if normalised.startswith(_SERVICE_PREFIXES) or _DATE_LIKE.fullmatch(span):
        return None
    return last, normalised


def _phone(text: str, _prefix: str) -> Iterator[Span]:
    for run in _PHONE_RUN.finditer(text):
        groups = list(_PHONE_GROUP_RE.finditer(text, run.start(), run.end()))
        i = 0
        while i < len(groups):
            found = _phone_in(text, groups, i)
            if found is None:
                i += 1
                continue
            # "05 040 123 4567": a number starting one group later that reaches further is the
            # real one (else its last digits would stay).
            if found[0] > i and (later := _phone_in(text, groups, i + 1)) and later[0] > found[0]:
                i += 1
                continue
            last, normalised = found
            yield groups[i].start(), groups[last].end(), normalised
            i = last + 1


# ---- street addresses ---------------------------------------------------------------------

_FI_STREET = (
    r"(?:katu|kuja|polku|raitti|väylä|kaari|kaarre|rinne|aukio|tori|ranta|puisto|mäki"
    r"|penger|tanhua|bulevardi|esplanadi|tie"
    r"|(?:kadu|kuja|polu|raiti|väylä|kaare|kaartee|rintee|aukio|tori|ranna|puisto|mäe|tie"
    r"|tanhua|bulevardi|esplanadi)(?:ll[aä]|lle|lt[aä]|n|ss[aä]|st[aä]))"
)
_SV_STREET = (
    r"(?:gatan|gata|vägen|väg|stigen|gränden|gränd|torget|torg|backen|backe|stranden"
    r"|strand|allén|alléen|allé|kajen|parken|leden|bågen|slingan|gången|esplanaden)"
)
_HOUSE = (
    r"[0-9]{1,4}(?:[ ]?[–\-][ ]?[0-9]{1,4})?[a-zA-Z]?"
    # staircase and flat: B 34, b34, A (a lone capital), as. 4, lgh 12
    r"(?:[ \u00a0]?(?-i:[A-Z](?:[ \u00a0]?[0-9]{1,3})?|[a-hj-z][ \u00a0]?[0-9]{1,3}))?"
    r"(?:[ \u00a0]?,?[ \u00a0]?(?:as\.?|asunto|lgh\.?|lägenhet|bst\.?|bostad|apt\.?"
    r"|apartment|flat)[ \u00a0]?[0-9]{1,4})?"
)
_ADDRESS = re.compile(
    _ALNUM_BEFORE
    + rf"[^\W\d_]{{2,}}?(?:{_FI_STREET}|{_SV_STREET})[ \u00a0]+{_HOUSE}"
    + _ALNUM_AFTER,
    re.IGNORECASE,
)
_ADDRESS_EN = re.compile(
    r"(?<![^\W_])[0-9]{1,4}[A-Za-z]?,?[ ](?:[A-Z][a-z]+[ ]){1,3}"
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Way|Close|Court|Place|Square"
    r"|Terrace|Crescent|Gardens)\b\.?"
)
# Words that end like "-tori" streets (Kauppatori, Rautatientori) but are people and things:
# rehtori, lektori, kuraattori, monitori, pastori, mentori.
_NOT_STREETS = ("htori", "ktori", "ttori", "itori", "ptori", "stori", "mentori", "kantori")


def _address(text: str, _prefix: str) -> Iterator[Span]:
    spans: list[tuple[int, int]] = []
    for m in _ADDRESS.finditer(text):
        street = m.group().split(None, 1)[0].lower()
        if street.endswith(_NOT_STREETS):
            continue
        spans.append((m.start(), m.end()))
    for m in _ADDRESS_EN.finditer(text):
        if not any(s < m.end() and m.start() < e for s, e in spans):
            spans.append((m.start(), m.end()))
    for start, end in sorted(spans):
        yield start, end, " ".join(text[start:end].casefold().replace(".", "").split())


# Order matters where shapes overlap: an e-mail may hold digits, a customer number may look
# like a phone number, a card number like a reference number.
_DETECTORS: tuple[tuple[str, Detector], ...] = (
    ("email", _email),
    ("hetu", _hetu),
    ("iban", _iban),
    ("case_number", _case_number),
    ("card", _card),
    ("phone", _phone),
    ("address", _address),
)


def redact(text: str, *, case_prefix: str = "NV") -> Redacted:
    """``text`` with its personal data replaced by placeholders, and what was found.

    ``case_prefix`` is ``NEUVONTA_CASE_PREFIX`` (our case numbers are ``<prefix>-XXXX-XXXX``).
    """
    # Numbers go on from placeholders already in the text, so two values never share one.
    counters: dict[str, int] = dict.fromkeys(KINDS, 0)
    for m in PLACEHOLDER.finditer(text):
        kind = m.group(1).lower()
        counters[kind] = max(counters[kind], int(m.group(2)))
    placeholders: dict[tuple[str, str], str] = {}
    found: dict[str, int] = {}
    for _ in range(_MAX_ROUNDS):
        before = sum(found.values())
        for kind, detect in _DETECTORS:
            parts: list[str] = []
            pos = 0
            for start, end, value in sorted(detect(text, case_prefix)):
                if start < pos:
                    continue
                key = (kind, value)
                if key not in placeholders:
                    counters[kind] += 1
                    placeholders[key] = f"[{kind.upper()}_{counters[kind]}]"
                parts += [text[pos:start], placeholders[key]]
                pos = end
                found[kind] = found.get(kind, 0) + 1
            if parts:
                text = "".join([*parts, text[pos:]])
        if sum(found.values()) == before:
            break
    return Redacted(text=text, found=found)
