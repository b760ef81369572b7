from __future__ import annotations

import re
from typing import Any

import pytest

from agents.base import Assessment
from router import phrases
from router.compose import compose, new_case_number
from router.decide import Action, ClarifyKind, Decision, HandoffReason, Owner, Situation, decide
from router.events import Role, SourceRef
from router.policy import Policy

SOURCE = SourceRef(doc_id="d1", title="Kirjastopalvelut", url="https://kunta.fi/kirjasto")


def decision(action: Action, **kw: Any) -> Decision:
    return Decision(action=action, queue="general", threshold=0.5, policy_version=1, **kw)


def answer(**kw: Any) -> Assessment:
    base: dict[str, Any] = {
        "language": "fi",
        "reply_language": "fi",
        "answer": "Kirjasto on auki arkisin 9–20.",
        "answer_language": "fi",
        "sources": (SOURCE,),
        "confidence": 0.9,
    }
    return Assessment(**(base | kw))


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_first_ai_answer_discloses_the_ai_in_the_residents_language(lang: str) -> None:
    out = compose(
        decision(Action.ANSWER),
        answer(reply_language=lang, language=lang, answer_language=lang),
        language=lang,
        disclosed=False,
    )
    assert out is not None and out.role is Role.AI
    assert out.text.startswith(phrases.disclosure(lang))
    assert "Kirjasto on auki" in out.text
    assert out.sources == (SOURCE,)


def test_later_answers_do_not_repeat_the_disclosure() -> None:
    out = compose(decision(Action.ANSWER), answer(), language="fi", disclosed=True)
    assert out is not None
    assert phrases.disclosure("fi") not in out.text


def test_a_clarifying_question_is_an_ai_message_and_discloses_too() -> None:
    out = compose(
        decision(Action.CLARIFY, clarify=ClarifyKind.GREETING), None, language="sv", disclosed=False
    )
    assert out is not None and out.role is Role.AI
    assert out.text.startswith(phrases.disclosure("sv"))
    assert phrases.clarify("sv", ClarifyKind.GREETING) in out.text


def test_handoff_acknowledgement_has_the_case_number() -> None:
    out = compose(
        decision(Action.HANDOFF, reason=HandoffReason.ASKED_FOR_HUMAN),
        None,
        language="en",
        disclosed=False,
        case_number="NV-ABCD-2345",
    )
    assert out is not None and out.role is Role.SYSTEM
    assert "NV-ABCD-2345" in out.text
    assert "112" not in out.text


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_urgent_handoff_leads_with_emergency_guidance(lang: str) -> None:
    out = compose(
        decision(Action.HANDOFF, reason=HandoffReason.URGENT, urgent=True),
        None,
        language=lang,
        disclosed=True,
        case_number="NV-ABCD-2345",
    )
    assert out is not None
    assert out.text.startswith(phrases.phrase("emergency", lang))
    assert "112" in out.text.split("\n")[0]


def test_an_urgent_held_message_gets_the_emergency_guidance() -> None:
    d = decide(Situation(assessment=None, owner=Owner.HUMAN, screened_urgent=True), Policy())
    assert d.action is Action.HOLD and d.urgent
    out = compose(d, None, language="sv", disclosed=True)
    assert out is not None and out.role is Role.SYSTEM
    assert "112" in out.text and "brådskande" in out.text


def test_hold_says_nothing() -> None:
    assert compose(decision(Action.HOLD), answer(), language="fi", disclosed=True) is None


def test_answer_from_another_language_says_so() -> None:
    out = compose(
        decision(Action.ANSWER),
        answer(language="en", reply_language="en", answer_language="fi"),
        language="en",
        disclosed=True,
    )
    assert out is not None
    assert "only available in Finnish" in out.text


def test_unsupported_language_gets_a_note() -> None:
    out = compose(
        decision(Action.ANSWER),
        answer(language="et", reply_language="en", answer_language="en"),
        language="en",
        disclosed=True,
    )
    assert out is not None
    assert out.text.startswith(phrases.unsupported_language_note("en"))


def test_every_phrase_exists_in_every_language() -> None:
    for key, texts in phrases._T.items():
        assert set(texts) == {"fi", "sv", "en"}, key
        assert all(t.strip() for t in texts.values()), key


def test_case_numbers_are_readable_and_distinct() -> None:
    numbers = {new_case_number("NV") for _ in range(2000)}
    assert len(numbers) == 2000
    for number in numbers:
        assert re.fullmatch(r"NV-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", number)
