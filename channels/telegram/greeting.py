"""What the bot says to ``/start`` and ``/help``: a welcome and the AI disclosure.

In the resident's Telegram language when it is Finnish, Swedish or English; otherwise in
all three, Finnish first: a municipality's residents read one of them, and a guess
(Finnish only) would leave a Swedish speaker with a German phone unable to read it. The
disclosure is the router's own sentence (``router.phrases``), so every channel says the
same thing about the AI and about reaching a person.
"""

from __future__ import annotations

from typing import Final

from router.phrases import disclosure

_LANGUAGES: Final = ("fi", "sv", "en")

_WELCOME: Final = {
    "fi": "Hei! Tämä on kunnan neuvonta Telegramissa.",
    "sv": "Hej! Det här är kommunens rådgivning på Telegram.",
    "en": "Hello! This is the municipality's advice service on Telegram.",
}
_ASK: Final = {
    "fi": "Kirjoita kysymyksesi tähän viestinä.",
    "sv": "Skriv din fråga här som ett meddelande.",
    "en": "Write your question here as a message.",
}


def greeting_language(language_code: str | None) -> str | None:
    """``fi``/``sv``/``en`` from Telegram's IETF tag (``fi``, ``sv-FI``, ``en-GB``), or None."""
    base = (language_code or "").split("-")[0].lower()
    return base if base in _LANGUAGES else None


def greeting_text(language_code: str | None) -> str:
    language = greeting_language(language_code)
    languages = (language,) if language else _LANGUAGES
    return "\n\n".join(f"{_WELCOME[lang]}\n{disclosure(lang)}\n{_ASK[lang]}" for lang in languages)
