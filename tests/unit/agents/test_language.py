from __future__ import annotations

import pytest

from agents.language import detect_language


@pytest.mark.parametrize(
    ("text", "language", "reply"),
    [
        ("hei", "fi", "fi"),
        ("moi", "fi", "fi"),
        ("kiitos", "fi", "fi"),
        ("Milloin kirjasto on auki?", "fi", "fi"),
        ("Haluan puhua ihmisen kanssa", "fi", "fi"),
        ("Hoidan muistisairasta puolisoani kotona, voinko saada jotain tukea?", "fi", "fi"),
        ("hej", "sv", "sv"),
        ("tack så mycket", "sv", "sv"),
        ("Hur ansöker man om personlig assistans?", "sv", "sv"),
        ("Var kan min tonåring träffa kompisar på kvällarna?", "sv", "sv"),
        ("hello", "en", "en"),
        ("thanks", "en", "en"),
        ("I want to talk to a human please.", "en", "en"),
        ("My company needs an environmental permit, how do I apply?", "en", "en"),
        ("Tere, kuidas saan taotleda?", "et", "fi"),
        ("Tere! Kus asub linna raamatukogu ja millal see avatud on?", "et", "fi"),
        ("Здравствуйте", "ru", "en"),
        ("Где находится библиотека и когда она открыта?", "ru", "en"),
        ("Привіт, як справи?", "uk", "en"),
        ("مرحبا، أين المكتبة؟", "ar", "en"),
    ],
)
def test_language_and_reply_language(text: str, language: str, reply: str) -> None:
    guess = detect_language(text)
    assert (guess.language, guess.reply_language) == (language, reply)


def test_unsupported_language_replies_in_the_conversation_language() -> None:
    guess = detect_language("Где находится библиотека?", hint="sv")
    assert guess.language == "ru"
    assert guess.reply_language == "sv"


@pytest.mark.parametrize("text", ["", "?", "1234 !!"])
def test_no_words_is_undetermined(text: str) -> None:
    assert detect_language(text).language == "und"
    assert detect_language(text, hint="sv").reply_language == "sv"
