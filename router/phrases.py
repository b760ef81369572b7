"""What the service says to residents on its own behalf, in Finnish, Swedish and English.

Kept in one table so translators review every sentence side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from agents.base import SUPPORTED_LANGUAGES
from router.decide import ClarifyKind

FALLBACK_LANGUAGE: Final = "fi"

_T: Final[dict[str, dict[str, str]]] = {
    # EU AI Act Art. 50: say that an AI answers, and how to reach a person.
    "disclosure": {
        "fi": (
            "Olen kunnan tekoälyavustaja: vastaukseni laaditaan automaattisesti kunnan "
            "julkaisemista tiedoista, ja ne voivat olla puutteellisia. Jos haluat asioida "
            "ihmisen kanssa, kirjoita ”haluan puhua ihmisen kanssa”."
        ),
        "sv": (
            "Jag är kommunens AI-assistent: mina svar skapas automatiskt utifrån det som "
            "kommunen har publicerat och kan vara ofullständiga. Om du vill tala med en "
            "människa, skriv ”jag vill tala med en människa”."
        ),
        "en": (
            "I am the municipality's AI assistant: my answers are generated automatically from "
            "the municipality's published information and may be incomplete. To reach a "
            "person, write “I want to talk to a person”."
        ),
    },
    "handoff": {
        "fi": (
            "Välitin viestisi asiakaspalvelun henkilölle, joka vastaa sinulle tässä "
            "keskustelussa. Asianumerosi on {case}."
        ),
        "sv": (
            "Jag har skickat ditt meddelande vidare till en person i kundtjänsten som svarar "
            "dig i den här konversationen. Ditt ärendenummer är {case}."
        ),
        "en": (
            "I have passed your message to a person in customer service, who will answer you "
            "in this conversation. Your case number is {case}."
        ),
    },
    # The resident wrote soon after their case was resolved: it is open again.
    "reopened": {
        "fi": (
            "Asiasi {case} on avattu uudelleen, ja viestisi on välitetty asiakaspalvelun "
            "henkilölle, joka vastaa sinulle tässä keskustelussa."
        ),
        "sv": (
            "Ditt ärende {case} har öppnats igen och ditt meddelande har skickats vidare till "
            "en person i kundtjänsten som svarar dig i den här konversationen."
        ),
        "en": (
            "Your case {case} has been reopened and your message passed to a person in "
            "customer service, who will answer you in this conversation."
        ),
    },
    # A person answers: by when (open now), or when the service opens (closed now).
    "handoff.open": {
        "fi": "Pyrimme vastaamaan viimeistään {when}.",
        "sv": "Vi strävar efter att svara senast {when}.",
        "en": "We aim to answer by {when}.",
    },
    "handoff.closed": {
        "fi": (
            "Palvelu on nyt suljettu, ja se avautuu {when}. Voit jo nyt kirjoittaa tähän "
            "lisätietoja asiastasi, niin ne odottavat vastaajaa."
        ),
        "sv": (
            "Tjänsten är stängd nu och öppnar {when}. Du kan redan nu skriva mer om ditt "
            "ärende här, så väntar det på den som svarar."
        ),
        "en": (
            "The service is closed now and opens at {when}. You may already leave the details "
            "of your matter here; they will be waiting for the person who answers."
        ),
    },
    "emergency": {
        "fi": (
            "Jos kyse on hätätilanteesta tai joku on vaarassa, soita heti hätänumeroon 112. "
            "Tämä palvelu ei ole hätäpalvelu."
        ),
        "sv": (
            "Om det är en nödsituation eller någon är i fara, ring genast nödnumret 112. "
            "Den här tjänsten är ingen nödtjänst."
        ),
        "en": (
            "If this is an emergency or someone is in danger, call the emergency number 112 "
            "now. This service is not an emergency service."
        ),
    },
    "held_urgent": {
        "fi": "Viestisi on merkitty kiireelliseksi asiaasi hoitavalle henkilölle.",
        "sv": "Ditt meddelande har markerats som brådskande för den som sköter ditt ärende.",
        "en": "Your message has been marked urgent for the person handling your case.",
    },
    "clarify.greeting": {
        "fi": "Hei! Miten voin auttaa? Kerro kysymyksesi omin sanoin.",
        "sv": "Hej! Hur kan jag hjälpa dig? Beskriv din fråga med egna ord.",
        "en": "Hello! How can I help? Please describe your question in your own words.",
    },
    "clarify.thanks": {
        "fi": "Kiitos viestistäsi! Kysy rohkeasti lisää, jos tarvitset apua.",
        "sv": "Tack för ditt meddelande! Fråga gärna mer om du behöver hjälp.",
        "en": "Thank you! Feel free to ask if you need anything else.",
    },
    "clarify.more_detail": {
        "fi": (
            "Kertoisitko hieman tarkemmin, mitä asiaa kysymyksesi koskee? Voin silloin etsiä "
            "oikean tiedon."
        ),
        "sv": "Kan du berätta lite mer om vad din fråga gäller? Då kan jag söka rätt information.",
        "en": "Could you tell me a little more about what you need? Then I can find the right "
        "information.",
    },
    "source_language": {
        "fi": "Tieto on saatavilla vain {source}.",
        "sv": "Informationen finns bara på {source}.",
        "en": "This information is only available in {source}.",
    },
    "unsupported_language": {
        "fi": "Palvelemme suomeksi, ruotsiksi ja englanniksi.",
        "sv": "Vi betjänar på finska, svenska och engelska.",
        "en": "We serve in Finnish, Swedish and English.",
    },
}

_LANGUAGE_NAMES: Final[dict[str, dict[str, str]]] = {
    "fi": {"fi": "suomeksi", "sv": "ruotsiksi", "en": "englanniksi"},
    "sv": {"fi": "finska", "sv": "svenska", "en": "engelska"},
    "en": {"fi": "Finnish", "sv": "Swedish", "en": "English"},
}


_WEEKDAYS: Final[dict[str, tuple[str, ...]]] = {
    # Finnish in the essive ("on Monday"), as the sentence needs it.
    "fi": (
        "maanantaina",
        "tiistaina",
        "keskiviikkona",
        "torstaina",
        "perjantaina",
        "lauantaina",
        "sunnuntaina",
    ),
    "sv": ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS: Final[dict[str, tuple[str, ...]]] = {
    "sv": (
        "januari",
        "februari",
        "mars",
        "april",
        "maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


@dataclass(frozen=True, slots=True)
class Availability:
    """When a person answers, in the queue's local time (``handoff.hours.availability``)."""

    open_now: bool
    # Open: the answer is due by then; closed: the service opens then.
    at: datetime
    now: datetime


def when(language: str | None, at: datetime, now: datetime) -> str:
    """``at`` as the resident reads it, relative to ``now`` (both in the same local zone):
    "tänään klo 14.30", "i morgon kl. 8.00", "8:00 on Monday 7 December"."""
    lang = supported(language)
    days = (at.date() - now.date()).days
    clock = f"{at.hour}.{at.minute:02d}" if lang != "en" else f"{at.hour}:{at.minute:02d}"
    day = {
        "fi": {0: "tänään", 1: "huomenna"},
        "sv": {0: "i dag", 1: "i morgon"},
        "en": {0: "today", 1: "tomorrow"},
    }[lang].get(days)
    weekday = _WEEKDAYS[lang][at.weekday()]
    if lang == "fi":
        return f"{day or f'{weekday} {at.day}.{at.month}.'} klo {clock}"
    month = _MONTHS[lang][at.month - 1]
    if lang == "sv":
        return f"{day or f'{weekday} den {at.day} {month}'} kl. {clock}"
    return f"{clock} {day or f'on {weekday} {at.day} {month}'}"


def supported(language: str | None) -> str:
    """The language we answer in: the resident's if we serve it, else the fallback."""
    return language if language in SUPPORTED_LANGUAGES else FALLBACK_LANGUAGE


def phrase(key: str, language: str | None, **values: str) -> str:
    text = _T[key][supported(language)]
    return text.format(**values) if values else text


def disclosure(language: str | None) -> str:
    return phrase("disclosure", language)


def handoff_ack(
    language: str | None,
    case_number: str,
    *,
    urgent: bool,
    availability: Availability | None = None,
) -> str:
    return _acknowledged(
        phrase("handoff", language, case=case_number), language, urgent, availability
    )


def reopened_ack(
    language: str | None,
    case_number: str,
    *,
    urgent: bool,
    availability: Availability | None = None,
) -> str:
    return _acknowledged(
        phrase("reopened", language, case=case_number), language, urgent, availability
    )


def _acknowledged(
    ack: str, language: str | None, urgent: bool, availability: Availability | None
) -> str:
    if availability is not None:
        key = "handoff.open" if availability.open_now else "handoff.closed"
        at = when(language, availability.at, availability.now)
        ack = f"{ack} {phrase(key, language, when=at)}"
    return f"{phrase('emergency', language)}\n\n{ack}" if urgent else ack


def held_urgent(language: str | None) -> str:
    return f"{phrase('emergency', language)}\n\n{phrase('held_urgent', language)}"


def clarify(language: str | None, kind: ClarifyKind) -> str:
    return phrase(f"clarify.{kind.value}", language)


def source_language_note(language: str | None, source_language: str) -> str:
    names = _LANGUAGE_NAMES[supported(language)]
    if source_language not in names:
        return ""
    return phrase("source_language", language, source=names[source_language])


def unsupported_language_note(language: str | None) -> str:
    return phrase("unsupported_language", language)
