"""What a resident gets from the offline agent over the demo knowledge base."""

from __future__ import annotations

import pytest

from agents.base import Intent, TriageRequest
from agents.offline import OfflineAgent
from agents.retrieval import expand_query
from handoff.queues import default_policy
from router.decide import Action, Situation, decide

LIBRARY = "6d5b9dea-beb0-4458-b7f9-4d0bd982ccf7"


def ask(text: str, **kw: object) -> TriageRequest:
    return TriageRequest.model_validate({"text": text, "channel": "web", **kw})


async def test_contract(lexical_agent: OfflineAgent) -> None:
    assert lexical_agent.name == "offline"
    assert 0.0 <= lexical_agent.ready_fraction <= 1.0


async def test_finnish_library_question_gets_the_library_in_finnish(
    lexical_agent: OfflineAgent,
) -> None:
    a = await lexical_agent.triage(ask("Milloin kirjasto on auki ja mitä kirjastossa voi tehdä?"))
    assert a.language == "fi"
    assert a.reply_language == "fi"
    assert "Kirjasto" in a.sources[0].title
    assert a.answer_language == "fi"
    assert a.answer is not None
    assert 0 < len(a.answer) < 600
    assert "kirjasto" in a.answer.lower()
    assert a.sources[0].url == f"http://127.0.0.1:8080/kb/{a.sources[0].doc_id}?lang=fi"
    assert a.department == "P25"
    assert a.ranked_doc_ids[0] == a.sources[0].doc_id
    assert a.reason


async def test_swedish_question_gets_a_swedish_answer(lexical_agent: OfflineAgent) -> None:
    a = await lexical_agent.triage(ask("Hur ansöker man om personlig assistans?"))
    assert a.reply_language == "sv"
    assert a.answer_language == "sv"
    assert a.sources[0].title == "Personlig assistans"
    assert a.sources[0].url is not None
    assert a.sources[0].url.endswith("?lang=sv")


async def test_english_question(lexical_agent: OfflineAgent) -> None:
    a = await lexical_agent.triage(ask("How do I get a right-of-occupancy apartment?"))
    assert a.answer_language == "en"
    assert a.sources[0].title == "Right-of-occupancy housing"
    assert a.department == "P1"
    assert a.answer is not None
    assert "*" not in a.answer
    assert "#" not in a.answer


@pytest.mark.parametrize(
    "text",
    [
        "What is my credit score?",
        "What will the weather be like tomorrow?",
        "Give me a recipe for lasagna",
        "how do i find the area of a circle",
        "Who won the football match yesterday?",
    ],
)
async def test_out_of_scope_gets_low_confidence(lexical_agent: OfflineAgent, text: str) -> None:
    a = await lexical_agent.triage(ask(text))
    assert a.confidence < 0.5


async def test_urgent_message_is_flagged_and_handed_off(lexical_agent: OfflineAgent) -> None:
    a = await lexical_agent.triage(ask("Naapurini kaatui pihalle eikä hengitä!"))
    assert a.urgent
    decision = decide(Situation(assessment=a, message_words=5), default_policy())
    assert decision.action is Action.HANDOFF
    assert decision.urgent


async def test_personal_case_is_handed_off(lexical_agent: OfflineAgent) -> None:
    a = await lexical_agent.triage(ask("Laskuni on väärin, asiakasnumero 44521, korjatkaa se."))
    assert a.personal_case
    assert "personal case" in a.reason


@pytest.mark.parametrize(
    ("text", "intent", "lang"),
    [
        ("hei", Intent.GREETING, "fi"),
        ("tack", Intent.THANKS, "sv"),
        ("hello", Intent.GREETING, "en"),
    ],
)
async def test_small_talk_has_no_answer(
    lexical_agent: OfflineAgent, text: str, intent: Intent, lang: str
) -> None:
    a = await lexical_agent.triage(ask(text))
    assert a.intent is intent
    assert a.answer is None
    assert a.reply_language == lang


async def test_unsupported_language_is_not_answered_automatically(
    lexical_agent: OfflineAgent,
) -> None:
    a = await lexical_agent.triage(ask("Где находится библиотека и когда она открыта?"))
    assert a.language == "ru"
    assert a.reply_language == "en"
    assert a.confidence < 0.5


async def test_short_follow_up_uses_the_previous_message(lexical_agent: OfflineAgent) -> None:
    a = await lexical_agent.triage(
        ask("entä ruotsiksi?", history=("Miten haen lukioon?",), language_hint="fi")
    )
    assert a.reply_language == "fi"
    assert a.ranked_doc_ids


async def test_empty_knowledge_base_still_applies_the_rules() -> None:
    agent = OfflineAgent.from_documents([])
    assert agent.wait_ready(10)
    a = await agent.triage(ask("My neighbour collapsed and is not breathing!"))
    assert a.urgent
    assert a.answer is None
    b = await agent.triage(ask("How do I apply for day care?"))
    assert b.confidence == 0.0
    assert b.sources == ()


def test_sweden_swedish_terms_also_search_the_finland_swedish_ones() -> None:
    expanded = expand_query("Får mitt barn skolskjuts till förskolan?")
    assert "skoltransport" in expanded
    assert "dagvård" in expanded
    assert expand_query("Miten haen lukioon?") == "Miten haen lukioon?"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Kan mitt barn få skolskjuts?", "Skoltransport"),
        ("Hur söker jag färdtjänst?", "Socialvårdens transporttjänster"),
    ],
)
async def test_sweden_swedish_question_finds_the_finland_swedish_service(
    lexical_agent: OfflineAgent, text: str, title: str
) -> None:
    a = await lexical_agent.triage(ask(text))
    assert a.sources[0].title == title
