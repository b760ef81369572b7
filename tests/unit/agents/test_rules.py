from __future__ import annotations

import pytest

from agents.base import Intent
from agents.rules import apply_rules


@pytest.mark.parametrize(
    "text",
    [
        "Naapurini kaatui pihalle eikä hengitä!",
        "Isä ei enää hengitä",
        "Lapseni on vaarassa kotona, isä on väkivaltainen juuri nyt",
        "Meidän talossa on tulipalo",
        "Ystäväni puhuu itsemurhasta",
        "Mieheni lyö minua nyt",
        "Min granne andas inte!",
        "Det brinner i trapphuset!",
        "Min son vill ta livet av sig",
        "Han är våldsam mot barnen",
        "My neighbour collapsed in the yard and is not breathing!",
        "There is a fire in our building",
        "My friend says she wants to kill herself... I mean she wants to die",
        "He is hitting me right now",
        "A child is in danger next door",
        "There is smoke in the stairwell now",
        "Isä uhkaa meitä veitsellä",
        "Lapsi on nielaissut pesuainetta",
        "Mitt barn har svalt tabletter",
        "My son swallowed a battery",
        "Dad has chest pain and is sweating",
    ],
)
def test_urgent(text: str) -> None:
    assert apply_rules(text).urgent is not None


@pytest.mark.parametrize(
    "text",
    [
        "Miten haen rakennuslupaa?",
        "Milloin palovaroitin pitää vaihtaa?",
        "Mistä saa apua lähisuhdeväkivaltaan?",
        "När kommer brandinspektionen till mitt hus?",
        "Is there emergency housing for homeless people?",
        "Where can I get help with violence at home?",
        "Can you help me find the library opening hours?",
        "How do I apply for a fire inspection?",
        "Kommunen hänvisar våldsutsatta kvinnor till en kvinnojour. Vi är nu missnöjda med den.",
        "Får personer med uppehållstillstånd svenskt personnummer?",
        "I need emergency dental care, where do I go?",
        "Miten hätänumeroon soitetaan?",
    ],
)
def test_not_urgent(text: str) -> None:
    assert apply_rules(text).urgent is None


@pytest.mark.parametrize(
    "text",
    [
        "Laskuni on väärin, asiakasnumero 44521, korjatkaa se.",
        "Miksi lapseni ei saanut paikkaa toivomastani koulusta? Päätös 2026-558.",
        "Missä vaiheessa hakemukseni käsittely on?",
        "Milloin saan päätöksen hakemukseeni?",
        "Henkilötunnukseni on 010190-123A",
        "Vad händer med min ansökan?",
        "Jag har fått fel faktura, kundnummer 12345",
        "Varför fick jag inte bostadsbidrag?",
        "What is the status of my application?",
        "My invoice is wrong",
        "I was charged twice, case number 55/2025",
    ],
)
def test_personal_case(text: str) -> None:
    assert apply_rules(text).personal_case is not None


@pytest.mark.parametrize(
    "text",
    [
        "Miten haen rakennuslupaa?",
        "Mistä saa rokotukset lapselle?",
        "Miten haen lukioon vuonna 2026?",
        "Hur ansöker man om personlig assistans?",
        "My son has special needs, what support is there in basic education?",
        "How do I apply for a building permit?",
    ],
)
def test_not_personal_case(text: str) -> None:
    assert apply_rules(text).personal_case is None


@pytest.mark.parametrize(
    "text",
    [
        "Haluan puhua ihmisen kanssa",
        "Voinko puhua asiakaspalvelijan kanssa?",
        "Soittakaa minulle",
        "Jag vill prata med en människa",
        "Kan jag tala med en handläggare?",
        "I want to talk to a human please.",
        "Can I speak to someone?",
        "real person please",
    ],
)
def test_wants_human(text: str) -> None:
    assert apply_rules(text).wants_human is not None


@pytest.mark.parametrize(
    "text",
    [
        "Miten ihmisen kannattaa hakea asuntoa?",
        "Hur pratar jag med mitt barn om mobbning?",
        "Where can I talk about my child's speech development?",
        "How do I apply for personal assistance?",
    ],
)
def test_not_wants_human(text: str) -> None:
    assert apply_rules(text).wants_human is None


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("hei", Intent.GREETING),
        ("Moi!", Intent.GREETING),
        ("Hyvää huomenta", Intent.GREETING),
        ("hej", Intent.GREETING),
        ("Hejsan!", Intent.GREETING),
        ("hello", Intent.GREETING),
        ("Hi there", Intent.GREETING),
        ("kiitos", Intent.THANKS),
        ("Kiitos paljon!", Intent.THANKS),
        ("tack", Intent.THANKS),
        ("Tack så mycket", Intent.THANKS),
        ("thanks", Intent.THANKS),
        ("Thank you very much!", Intent.THANKS),
        ("Hei, milloin kirjasto on auki?", Intent.QUESTION),
        ("Kiitos, entä uimahalli?", Intent.QUESTION),
        ("hello, how do I apply for day care?", Intent.QUESTION),
    ],
)
def test_small_talk(text: str, intent: Intent) -> None:
    assert apply_rules(text).intent is intent
