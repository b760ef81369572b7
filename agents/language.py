"""Language identification for residents' messages (fi, sv, en and the usual others).

Non-Latin scripts (Cyrillic, Arabic, Thai, Han, ...) are told apart by their letters. For
Latin-script text, lingua restricted to the languages residents of Finnish municipalities write
in is accurate on sentences; on one- or two-word messages ("hej", "hello") it guesses, so a
small lexicon of very common fi/sv/en words, a prior for fi/sv/en and the conversation's
earlier language settle short texts. Loading lingua's models holds the GIL for ~1.5 s (a
background thread would stall every other thread just the same), so the language set is kept
small and the load happens once per process, when the agent is built.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from agents.base import SUPPORTED_LANGUAGES, ReplyLanguage
from agents.rules import words

# Latin-script languages lingua is asked to tell apart (others come out as the nearest).
DETECTED_LANGUAGES: tuple[str, ...] = ("fi", "sv", "en", "et", "so", "de", "fr", "es")
# Residents mostly write the supported languages: a prior against look-alike guesses.
SUPPORTED_PRIOR = 1.5

# Scripts that name their language (or a pair told apart by a few letters).
_SCRIPTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[іїєґІЇЄҐ]"), "uk"),
    (re.compile(r"[\u0400-\u04ff]"), "ru"),
    (re.compile(r"[پچژگ]"), "fa"),
    (re.compile(r"[\u0600-\u06ff]"), "ar"),
    (re.compile(r"[\u0e00-\u0e7f]"), "th"),
    (re.compile(r"[\u3040-\u30ff]"), "ja"),
    (re.compile(r"[\uac00-\ud7af]"), "ko"),
    (re.compile(r"[\u4e00-\u9fff]"), "zh"),
    (re.compile(r"[\u0370-\u03ff]"), "el"),
    (re.compile(r"[\u0590-\u05ff]"), "he"),
    (re.compile(r"[\u0900-\u097f]"), "hi"),
    (re.compile(r"[\u1200-\u137f]"), "am"),
)
_LATIN = re.compile(r"[A-Za-zÀ-ɏ]")

# Frequent words that identify a supported language in a very short message.
SHORT_TEXT_LEXICON: dict[str, ReplyLanguage] = {
    **dict.fromkeys(
        words(
            "hei moi moikka terve päivää huomenta iltaa kiitos kiitti kiitoksia joo kyllä ei "
            "mitä miten missä milloin voinko haluan apua"
        ),
        "fi",
    ),
    **dict.fromkeys(
        words(
            "hej hejsan tjena hallå god dag morgon tack tackar ja nej vad hur var när kan jag "
            "vill hjälp"
        ),
        "sv",
    ),
    **dict.fromkeys(
        words(
            "hello hi hey good morning evening thanks thank you cheers yes no what how where "
            "when can want help please"
        ),
        "en",
    ),
}

# Below this lingua confidence the top guess is treated as unknown.
MIN_CONFIDENCE = 0.35
SHORT_TEXT_WORDS = 3

_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    language: str  # ISO 639-1 code, or "und"
    reply_language: ReplyLanguage
    confidence: float

    @property
    def supported(self) -> bool:
        return self.language in SUPPORTED_LANGUAGES


_BUILD_LOCK = threading.Lock()


def _detector() -> Any:
    """Build once (≈3 s with preloaded models); warm it up in a thread at start-up."""
    with _BUILD_LOCK:  # the warm-up thread and a first triage must not both build it
        return _build_detector()


@cache
def _build_detector() -> Any:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    langs = [
        Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in DETECTED_LANGUAGES
    ]
    return LanguageDetectorBuilder.from_languages(*langs).with_preloaded_language_models().build()


def preload() -> None:
    """Load the detector now (once per process) instead of during the first message."""
    _detector()


def lingua_scores(text: str) -> dict[str, float]:
    values = _detector().compute_language_confidence_values(text)
    scores = {v.language.iso_code_639_1.name.lower(): float(v.value) for v in values}
    for lang in SUPPORTED_LANGUAGES:
        if lang in scores:
            scores[lang] *= SUPPORTED_PRIOR
    return scores


def script_language(text: str) -> str | None:
    """The language a non-Latin script gives away, when most letters are in it."""
    letters = [c for c in text if c.isalpha()]
    latin = sum(1 for c in letters if _LATIN.match(c))
    if not letters or latin * 2 >= len(letters):
        return None
    return next((lang for pattern, lang in _SCRIPTS if pattern.search(text)), "und")


def reply_language_for(language: str, hint: str | None) -> ReplyLanguage:
    """Reply in the resident's language when supported, else the conversation's, else English."""
    for code in (language, hint):
        if code == "fi":
            return "fi"
        if code == "sv":
            return "sv"
        if code == "en":
            return "en"
    # Estonian readers in Finland usually read Finnish more easily than English.
    return "fi" if language == "et" else "en"


def detect_language(text: str, hint: str | None = None) -> LanguageGuess:
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        lang = hint if hint in SUPPORTED_LANGUAGES else "und"
        return LanguageGuess(lang, reply_language_for(lang, hint), 0.0)
    by_script = script_language(text)
    if by_script is not None:
        return LanguageGuess(by_script, reply_language_for(by_script, hint), 1.0)
    scores = lingua_scores(text)
    if len(words) <= SHORT_TEXT_WORDS:
        # Short messages: common-word votes and the conversation so far outweigh lingua.
        for w in words:
            if w in SHORT_TEXT_LEXICON:
                lang = SHORT_TEXT_LEXICON[w]
                scores[lang] = scores.get(lang, 0.0) + 1.0 / len(words)
        if hint in scores:
            scores[hint] += 0.15
    best = max(scores, key=lambda k: scores[k])
    total = sum(scores.values()) or 1.0
    confidence = scores[best] / total
    if confidence < MIN_CONFIDENCE:
        lang = hint if hint in SUPPORTED_LANGUAGES else "und"
        return LanguageGuess(lang, reply_language_for(lang, hint), confidence)
    return LanguageGuess(best, reply_language_for(best, hint), confidence)
