from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.base import Assessment, Intent
from router.decide import (
    Action,
    AgentFailure,
    ClarifyKind,
    HandoffReason,
    Owner,
    Situation,
    decide,
)
from router.events import SourceRef
from router.policy import Policy

SOURCE = SourceRef(doc_id="d1", title="Kirjastopalvelut", url=None)

POLICY = Policy(
    version=7,
    default_threshold=0.5,
    queue_thresholds={"health": 0.8, "social": 1.0},
    department_queues={"P5": "health", "P4": "social", "P25": "culture"},
    always_handoff_queues=frozenset({"culture"}),
    max_ai_turns=3,
)


def assessment(**kw: Any) -> Assessment:
    base: dict[str, Any] = {
        "language": "fi",
        "reply_language": "fi",
        "answer": "Kirjasto on auki arkisin.",
        "sources": (SOURCE,),
        "confidence": 0.9,
        "department": None,
    }
    return Assessment(**(base | kw))


def situation(a: Assessment | None = None, **kw: Any) -> Situation:
    base: dict[str, Any] = {"assessment": a if a is not None else assessment(), "message_words": 6}
    return Situation(**(base | kw))


CASES = [
    # (name, situation, action, reason, clarify, queue)
    ("confident answer", situation(), Action.ANSWER, None, None, "general"),
    (
        "below default threshold",
        situation(assessment(confidence=0.49)),
        Action.HANDOFF,
        HandoffReason.LOW_CONFIDENCE,
        None,
        "general",
    ),
    (
        "exactly the threshold answers",
        situation(assessment(confidence=0.5)),
        Action.ANSWER,
        None,
        None,
        "general",
    ),
    (
        "queue threshold applies",
        situation(assessment(confidence=0.7, department="P5")),
        Action.HANDOFF,
        HandoffReason.LOW_CONFIDENCE,
        None,
        "health",
    ),
    (
        "queue threshold met",
        situation(assessment(confidence=0.85, department="P5")),
        Action.ANSWER,
        None,
        None,
        "health",
    ),
    (
        "threshold 1.0 never answers",
        situation(assessment(confidence=0.99, department="P4")),
        Action.HANDOFF,
        HandoffReason.LOW_CONFIDENCE,
        None,
        "social",
    ),
    (
        "always-handoff queue",
        situation(assessment(department="P25")),
        Action.HANDOFF,
        HandoffReason.QUEUE_RULE,
        None,
        "culture",
    ),
    (
        "urgent beats a perfect answer",
        situation(assessment(urgent=True, confidence=1.0)),
        Action.HANDOFF,
        HandoffReason.URGENT,
        None,
        "general",
    ),
    (
        "asks for a person",
        situation(assessment(wants_human=True)),
        Action.HANDOFF,
        HandoffReason.ASKED_FOR_HUMAN,
        None,
        "general",
    ),
    (
        "personal case",
        situation(assessment(personal_case=True)),
        Action.HANDOFF,
        HandoffReason.PERSONAL_CASE,
        None,
        "general",
    ),
    (
        "urgent before personal",
        situation(assessment(urgent=True, personal_case=True)),
        Action.HANDOFF,
        HandoffReason.URGENT,
        None,
        "general",
    ),
    (
        "AI error",
        Situation(assessment=None, failure=AgentFailure.ERROR),
        Action.HANDOFF,
        HandoffReason.AI_ERROR,
        None,
        "general",
    ),
    (
        "AI timeout",
        Situation(assessment=None, failure=AgentFailure.TIMEOUT),
        Action.HANDOFF,
        HandoffReason.AI_TIMEOUT,
        None,
        "general",
    ),
    (
        "no assessment at all is an error",
        Situation(assessment=None),
        Action.HANDOFF,
        HandoffReason.AI_ERROR,
        None,
        "general",
    ),
    (
        "no answer found",
        situation(assessment(answer=None, sources=(), confidence=0.1)),
        Action.HANDOFF,
        HandoffReason.NO_ANSWER,
        None,
        "general",
    ),
    (
        "answer without sources is no answer",
        situation(assessment(sources=())),
        Action.HANDOFF,
        HandoffReason.NO_ANSWER,
        None,
        "general",
    ),
    ("a person owns it", situation(owner=Owner.HUMAN), Action.HOLD, None, None, "general"),
    (
        "a person owns it, even urgent",
        situation(assessment(urgent=True), owner=Owner.HUMAN),
        Action.HOLD,
        None,
        None,
        "general",
    ),
    (
        "too many AI turns",
        situation(ai_turns=3),
        Action.HANDOFF,
        HandoffReason.MAX_TURNS,
        None,
        "general",
    ),
    (
        "greeting",
        situation(
            assessment(answer=None, sources=(), intent=Intent.GREETING, confidence=0.0),
            message_words=1,
        ),
        Action.CLARIFY,
        None,
        ClarifyKind.GREETING,
        "general",
    ),
    (
        "thanks",
        situation(
            assessment(answer=None, sources=(), intent=Intent.THANKS, confidence=0.0),
            message_words=1,
        ),
        Action.CLARIFY,
        None,
        ClarifyKind.THANKS,
        "general",
    ),
    (
        "short and unclear: ask once",
        situation(assessment(confidence=0.2), message_words=2),
        Action.CLARIFY,
        None,
        ClarifyKind.MORE_DETAIL,
        "general",
    ),
    (
        "short and unclear again: hand off",
        situation(assessment(confidence=0.2), message_words=2, clarifications=1),
        Action.HANDOFF,
        HandoffReason.LOW_CONFIDENCE,
        None,
        "general",
    ),
]


@pytest.mark.parametrize(
    ("situation_", "action", "reason", "clarify", "queue"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decision_table(
    situation_: Situation,
    action: Action,
    reason: HandoffReason | None,
    clarify: ClarifyKind | None,
    queue: str,
) -> None:
    d = decide(situation_, POLICY)
    assert (d.action, d.reason, d.clarify, d.queue) == (action, reason, clarify, queue)
    assert d.policy_version == 7
    assert d.threshold == POLICY.threshold_for(queue)


def test_a_department_guessed_without_confidence_routes_to_the_default_queue() -> None:
    # "I want a person" says nothing of the topic: the retrieval's best guess is noise.
    unsure = assessment(department="P5", confidence=0.1, wants_human=True)
    assert decide(situation(unsure), POLICY).queue == "general"
    sure = assessment(department="P5", confidence=0.6, wants_human=True)
    assert decide(situation(sure), POLICY).queue == "health"
    # The topic's own threshold and rules still apply to the answer decision.
    assert decide(situation(assessment(department="P5", confidence=0.2)), POLICY).threshold == 0.8
    culture = assessment(department="P25", confidence=0.2)
    assert decide(situation(culture), POLICY).reason is HandoffReason.QUEUE_RULE


def test_urgent_decisions_are_flagged_urgent() -> None:
    assert decide(situation(assessment(urgent=True)), POLICY).urgent
    assert not decide(situation(), POLICY).urgent


# -- properties ---------------------------------------------------------------------------

assessments = st.builds(
    Assessment,
    language=st.sampled_from(["fi", "sv", "en", "et", "und"]),
    reply_language=st.sampled_from(["fi", "sv", "en"]),
    intent=st.sampled_from(list(Intent)),
    answer=st.one_of(st.none(), st.just("Vastaus.")),
    sources=st.one_of(st.just(()), st.just((SOURCE,))),
    confidence=st.floats(0, 1),
    department=st.sampled_from([None, "P5", "P4", "P25", "P6"]),
    urgent=st.booleans(),
    personal_case=st.booleans(),
    wants_human=st.booleans(),
)
situations = st.builds(
    Situation,
    assessment=st.one_of(st.none(), assessments),
    failure=st.one_of(st.none(), st.sampled_from(list(AgentFailure))),
    owner=st.sampled_from(list(Owner)),
    ai_turns=st.integers(0, 10),
    clarifications=st.integers(0, 3),
    message_words=st.integers(0, 40),
)
policies = st.builds(
    Policy,
    default_threshold=st.floats(0, 1),
    queue_thresholds=st.dictionaries(
        st.sampled_from(["health", "social", "general"]), st.floats(0, 1)
    ),
    department_queues=st.just({"P5": "health", "P4": "social", "P25": "culture"}),
    always_handoff_queues=st.frozensets(st.sampled_from(["health", "culture"])),
    max_ai_turns=st.integers(1, 10),
    clarify_short_messages=st.booleans(),
)


@given(s=situations, p=policies, bump=st.floats(0, 1))
def test_raising_confidence_never_turns_an_answer_into_a_handoff(
    s: Situation, p: Policy, bump: float
) -> None:
    if s.assessment is None or decide(s, p).action is not Action.ANSWER:
        return
    higher = s.assessment.model_copy(
        update={"confidence": min(1.0, s.assessment.confidence + bump)}
    )
    assert decide(s.model_copy(update={"assessment": higher}), p).action is Action.ANSWER


@given(s=situations, p=policies)
def test_urgent_always_goes_to_a_person(s: Situation, p: Policy) -> None:
    if s.assessment is None or not s.assessment.urgent:
        return
    d = decide(s, p)
    assert d.action in (Action.HANDOFF, Action.HOLD)
    assert d.urgent
    if s.owner is Owner.AI and s.failure is None:
        assert d.reason is HandoffReason.URGENT


@given(s=situations, p=policies)
def test_a_person_owned_conversation_never_gets_an_ai_message(s: Situation, p: Policy) -> None:
    if s.owner is Owner.HUMAN:
        assert decide(s, p).action is Action.HOLD


@given(s=situations, p=policies)
def test_answers_need_a_grounded_draft_above_the_threshold(s: Situation, p: Policy) -> None:
    d = decide(s, p)
    if d.action is Action.ANSWER:
        a = s.assessment
        assert a is not None and s.failure is None
        assert a.answer is not None and a.sources
        assert a.confidence >= d.threshold
        assert not (a.urgent or a.personal_case or a.wants_human)


@given(s=situations, p=policies)
def test_every_handoff_has_a_reason_and_only_handoffs_do(s: Situation, p: Policy) -> None:
    d = decide(s, p)
    assert (d.reason is not None) == (d.action is Action.HANDOFF)
    assert (d.clarify is not None) == (d.action is Action.CLARIFY)


@given(s=situations, p=policies)
def test_decide_is_deterministic(s: Situation, p: Policy) -> None:
    assert decide(s, p) == decide(s, p)
