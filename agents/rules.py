"""Rules that scores cannot carry: urgency, personal cases, asking for a person, small talk.

The word lists are data: each entry is a phrase of word patterns, ``stem*`` matching any
inflected form (Finnish cases and possessive suffixes, Swedish definite forms), a bare word
matching exactly. Consecutive words of a phrase may have up to ``GAP`` other words between
them, so "ei enää hengitä" matches "ei hengit*". A match is checked on the lower-cased text
with punctuation removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from agents.base import Intent

GAP = 2


def words(text: str) -> list[str]:
    """Space-separated word lists read better as data than long list literals."""
    return text.split()


# Alone enough: danger to life or health happening now.
URGENT_STRONG: tuple[str, ...] = (
    # fi
    "ei hengit*", "hengitys pysähty*", "lakannut hengittä*", "tajuton*", "tajuttom*",
    "ei herää", "elvyt*", "sydänkohtau*", "sydänpysähdy*", "aivoinfarkt*", "aivohalvau*",
    "tulipalo*", "liekeissä", "palaa nyt", "talo palaa", "asunto palaa",
    "väkivaltai*", "hakkaa*", "lyö minua", "lyö lasta", "uhkaa tappaa", "uhkaa tapp*",
    "tappaa minut", "itsemurh*", "tappaa itse*", "vahingoittaa itseä*", "viiltel*",
    "en halua elää", "ei halua elää", "halua* kuolla", "itsetuho*", "hengenvaara*",
    "on vaarassa", "vaarassa kotona",
    "myrkyty*", "yliannostu*", "hukku*", "tukehtu*", "kouristel*", "vuotaa verta",
    "verenvuoto*", "hätätilanne*", "apua nyt", "kaatui eikä", "nielaissut", "rintakipu*",
    "kouristu*", "ei saa herätettyä", "anafyla*",
    # sv
    "andas inte", "slutat andas", "medvetslös*", "vaknar inte", "hjärtstopp*",
    "hjärtinfarkt*", "det brinner", "brinner", "eldsvåda*", "i lågor", "våldsam*",
    "slår mig", "slår barn*", "hotar att döda", "hotar döda", "självmord*", "ta livet av",
    "skada sig själv", "skada mig själv", "vill inte leva", "vill dö", "i fara", "livsfara*",
    "överdos*",
    "förgifta*", "drunkn*", "kvävs", "blöder kraftigt", "har svalt", "bröstsmärt*",
    "krampanfall*", "går inte att väcka", "anafylax*", "allergisk chock",
    # en
    "not breathing", "stopped breathing", "can't breathe", "cannot breathe", "unconscious",
    "collapsed", "heart attack", "having a stroke", "on fire", "is burning", "house fire",
    "there is a fire", "there's a fire", "violent", "hitting me", "beating me", "beats me",
    "threaten* to kill", "going to kill", "kill* *self", "suicid*", "hurt* *self",
    "self harm", "want* to die", "end* life", "in danger", "overdos*", "poisoned", "drowning",
    "bleeding heavily", "choking", "life threatening", "swallowed", "chest pain",
    "seizure", "won't wake up", "can't wake", "anaphyla*",
)  # fmt: skip

# Only with a sign that it is happening now (violence as a topic is an ordinary question).
URGENT_WEAK: tuple[str, ...] = (
    "väkivalt*", "lyö*", "lyönyt", "uhkaa*", "tappa*", "hätä", "savua",
    "våld*", "slår", "hotar", "nödsituation", "rök",
    "violence", "abuse*", "hits", "threaten*", "emergency", "smoke",
)  # fmt: skip
URGENT_NOW: tuple[str, ...] = (
    "nyt", "heti", "juuri", "parhaillaan", "minua", "meitä",
    "nu", "genast", "mig", "oss",
    "now", "immediately", "me", "us",
)  # fmt: skip

PERSONAL_CASE: tuple[str, ...] = (
    # fi: "my application/bill/decision/..." (possessive suffix -ni) and case numbers
    "hakemukse*ni", "hakemusta*ni", "laskuni", "laskua*ni", "laskusta*ni", "laskulle*ni",
    "päätökse*ni", "päätöstä*ni", "maksuni", "maksua*ni", "sopimukse*ni", "varaukse*ni",
    "ajanvaraukse*ni", "valituksen*ni", "valitukse*ni", "asiani", "asiaani", "asiastani",
    "etuute*ni", "tukeni", "lupani", "lupaani", "luvastani", "rakennuslupani", "tilaukse*ni",
    "asiakasnumero*", "asiakasnro", "viitenumero*", "diaarinumero*", "asianumero*",
    "hakemusnumero*", "päätösnumero*", "henkilötunnu*ni", "miksi en saanut", "miksi ei saanut",
    "koska saan päätöksen", "milloin saan päätöksen",
    # sv
    "min ansökan", "min ansökning", "mitt ärende", "min faktura", "min räkning", "mitt beslut",
    "min betalning", "min bokning", "mitt tillstånd", "mitt bygglov", "min förmån",
    "mitt kundnummer", "kundnummer*", "ärendenummer*", "fakturanummer*", "mitt personnummer",
    "min personbeteckning", "varför fick jag inte", "mina uppgifter",
    # en
    "my application", "my bill", "my invoice", "my decision", "my case", "my payment",
    "my booking", "my appointment", "my complaint", "my benefit", "my permit",
    "my building permit", "my file", "my account", "customer number", "case number",
    "reference number", "invoice number", "application number", "my personal identity code",
    "my social security number", "why was i denied", "why didn't i get", "why did i not get",
    "status of my",
)  # fmt: skip

WANTS_HUMAN: tuple[str, ...] = (
    # fi
    "ihmisen kanssa", "oikea* ihmi*", "ihmiselle", "asiakaspalvelija*",
    "virkailija* kanssa", "virkailijan", "henkilön kanssa", "työntekijän kanssa",
    "puhua jonkun", "soittakaa minulle", "soittaa minulle", "soittopyyn*", "ottakaa yhteyttä",
    "yhteyttä minuun",
    # sv
    "prata* människa", "prata* person", "prata* någon", "prata* handläggare",
    "tala* människa", "tala* person", "tala* någon", "tala* handläggare", "riktig person",
    "riktig människa", "kundtjänst*", "ring mig", "ringa mig", "kontakta mig",
    # en
    "talk* human", "talk* person", "talk* someone", "talk* somebody", "talk* agent",
    "speak* human", "speak* person", "speak* someone", "speak* somebody", "speak* agent",
    "talk* representative", "speak* representative", "human please", "real person",
    "real human", "a human", "customer service", "call me back", "call me", "contact me",
    "an agent", "a representative", "an operator",
)  # fmt: skip

# Whole-message small talk; the message must consist of these words only.
GREETING_WORDS = frozenset(
    words(
        "hei moi moikka moro terve päivää huomenta iltaa hyvää "
        "hej hejsan hallå tjena god dag morgon kväll "
        "hello hi hey hiya good morning afternoon evening there"
    )
)
THANKS_WORDS = frozenset(
    words(
        "kiitos kiitti kiitoksia paljon oikein hei näkemiin "
        "tack tackar så mycket hej då hejdå "
        "thanks thank you very much cheers bye goodbye ty thx a lot"
    )
)
CLOSING_STARTERS = frozenset(words("kiitos kiitti kiitoksia tack tackar thanks thank thx ty"))

_SENTENCE_BREAK = re.compile(r"[.!?;:]+(?:\s|$)")
_NON_WORD = re.compile(r"[^\w'+-]+")
_IDENTITY_CODE = re.compile(r"\b\d{6}[-+a-fyxwvu]\d{3}[0-9a-y]\b", re.IGNORECASE)
_CASE_NUMBER = re.compile(r"\b\d{2,4}[-/]\d{2,}\b|\b\d{5,}\b")


def normalise(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text.lower().replace("’", "'")).split())


def _word(token: str) -> str:
    if "*" in token:
        head, _, tail = token.partition("*")
        return rf"{re.escape(head)}[\w'-]*{re.escape(tail)}"
    return re.escape(token)


@cache
def compile_phrases(phrases: tuple[str, ...], max_gap: int = GAP) -> re.Pattern[str]:
    """One regex for a phrase list: words in order, up to ``max_gap`` words between neighbours."""
    gap = rf"(?: [\w'+-]+){{0,{max_gap}}} "
    alternatives = [gap.join(_word(t) for t in p.split()) for p in phrases]
    return re.compile(rf"(?<![\w'-])(?:{'|'.join(alternatives)})(?![\w'-])")


def first_match(phrases: tuple[str, ...], normalised: str, max_gap: int = GAP) -> str | None:
    m = compile_phrases(phrases, max_gap).search(normalised)
    return m.group(0) if m else None


# A weak sign counts when a "now" word is near it (same clause), not anywhere in a long text.
URGENT_NEAR: tuple[str, ...] = tuple(
    phrase for w in URGENT_WEAK for c in URGENT_NOW for phrase in (f"{w} {c}", f"{c} {w}")
)
NEAR_WORDS = 4


@dataclass(frozen=True, slots=True)
class RuleHits:
    urgent: str | None = None
    personal_case: str | None = None
    wants_human: str | None = None
    intent: Intent = Intent.QUESTION

    def explain(self) -> str:
        parts = [
            f"{name}: '{hit}'"
            for name, hit in (
                ("urgent", self.urgent),
                ("personal case", self.personal_case),
                ("asks for a person", self.wants_human),
            )
            if hit
        ]
        if self.intent is not Intent.QUESTION:
            parts.append(f"intent {self.intent.value}")
        return "; ".join(parts)


def small_talk(normalised: str) -> Intent:
    words = normalised.split()
    if not words:
        return Intent.OTHER
    if all(w in THANKS_WORDS for w in words) and any(w in CLOSING_STARTERS for w in words):
        return Intent.THANKS
    if all(w in GREETING_WORDS for w in words):
        return Intent.GREETING
    if all(w in THANKS_WORDS or w in GREETING_WORDS for w in words):
        return Intent.THANKS if words[0] in CLOSING_STARTERS else Intent.GREETING
    return Intent.QUESTION


def urgent_hit(normalised: str) -> str | None:
    strong = first_match(URGENT_STRONG, normalised)
    if strong:
        return strong
    return first_match(URGENT_NEAR, normalised, NEAR_WORDS)


def personal_case_hit(text: str, normalised: str) -> str | None:
    for pattern in (_IDENTITY_CODE, _CASE_NUMBER):
        m = pattern.search(text)
        if m:
            return m.group(0)
    return first_match(PERSONAL_CASE, normalised)


def apply_rules(text: str) -> RuleHits:
    n = normalise(text)
    # Sentence by sentence, so "now" in one sentence does not make another one urgent.
    clauses = (normalise(c) for c in _SENTENCE_BREAK.split(text))  # as in is_urgent()
    return RuleHits(
        urgent=next((hit for c in clauses if (hit := urgent_hit(c))), None),
        personal_case=personal_case_hit(text, n),
        wants_human=first_match(WANTS_HUMAN, n),
        intent=small_talk(n),
    )


# Facts that general service descriptions do not hold: a question asking for them cannot be
# answered from such a text, however well the topic matches ("when is the pool open").
FACT_QUESTIONS: dict[str, tuple[str, ...]] = {
    "opening hours": (
        "aukiolo*", "auki", "aukeaa", "aukeavat", "mihin aikaan", "monelta",
        "öppettid*", "öppen", "öppet", "öppnar", "vilka tider", "hur dags",
        "opening hours", "open on", "open at", "opens", "what time", "closing time",
    ),
    "contact details": (
        "puhelinnumero*", "sähköposti*", "yhteystie*", "telefonnummer*", "e-post*", "mejl*",
        "kontaktuppgift*", "phone number", "telephone number", "email*", "e-mail*",
        "contact details",
    ),
}  # fmt: skip
FACT_EVIDENCE: dict[str, re.Pattern[str]] = {
    "opening hours": re.compile(
        r"\b(?:klo|kl)\.?\s*\d|\b\d{1,2}[.:]\d{2}\b|\b\d{1,2}\s*[-–]\s*\d{1,2}\b", re.IGNORECASE
    ),
    "contact details": re.compile(r"@|\+?\d[\d\s-]{6,}\d|www\.|https?://", re.IGNORECASE),
}


def fact_asked(text: str) -> str | None:
    """The kind of specific fact the question asks for, if any."""
    n = normalise(text)
    return next((kind for kind, p in FACT_QUESTIONS.items() if first_match(p, n)), None)


def holds_fact(kind: str, text: str) -> bool:
    return bool(FACT_EVIDENCE[kind].search(text))


def preload() -> None:
    """Compile every phrase list now (≈0.15 s) rather than in the first resident's message."""
    for phrases in (URGENT_STRONG, PERSONAL_CASE, WANTS_HUMAN, *FACT_QUESTIONS.values()):
        compile_phrases(phrases)
    compile_phrases(URGENT_NEAR, NEAR_WORDS)


def is_urgent(text: str) -> bool:
    """Only the urgency rules (danger to life or health, violence, a child in danger, self-harm)."""
    return any(urgent_hit(normalise(c)) for c in _SENTENCE_BREAK.split(text))
