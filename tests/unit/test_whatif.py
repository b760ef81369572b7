"""The what-if simulator: recorded decisions replayed under candidate thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agents.base import Assessment
from agents.evaluate import Outcome as EvalOutcome
from agents.evaluate import Question
from handoff.queues import default_policy
from handoff.thresholds import Thresholds
from handoff.whatif import (
    MIN_PRECISION_SAMPLES,
    Sample,
    best_precision,
    by_queue,
    curve,
    observed_days,
    sample_from_decision,
    sample_from_eval,
    simulate,
    would_answer,
)
from router.decide import Situation, decide
from router.events import SourceRef

BASE = default_policy(0.5)
HEALTH_DEPT = next(d for d, q in BASE.department_queues.items() if q == "health")
SOURCE = SourceRef(doc_id="d1", title="Terveysasema", url="https://kunta.example/terveys")


def assessment(confidence: float, **kw: Any) -> Assessment:
    fields: dict[str, Any] = {
        "language": "fi",
        "reply_language": "fi",
        "answer": "Terveysasema on auki arkisin.",
        "answer_language": "fi",
        "sources": (SOURCE,),
        "confidence": confidence,
        "department": HEALTH_DEPT,
    }
    return Assessment(**(fields | kw))


def recorded(a: Assessment, threshold: float, words: int = 6) -> dict[str, Any]:
    """The decision row the router would store for ``a`` under ``threshold``."""
    policy = Thresholds(default=threshold).apply(BASE, 1)
    d = decide(Situation(assessment=a, message_words=words), policy)
    return {
        "action": d.action.value,
        "reason": d.reason.value if d.reason else None,
        "clarify": d.clarify.value if d.clarify else None,
        "queue": d.queue,
        "confidence": a.confidence,
        "department": a.department,
        "draft": a.answer,
        "sources": [s.model_dump() for s in a.sources],
        "failure": None,
    }


def sample(queue: str, confidence: float, correct: bool | None = None) -> Sample:
    return Sample(
        topic_queue=queue,
        ticket_queue=queue,
        confidence=confidence,
        gated=True,
        answered=False,
        ticket=True,
        correct=correct,
    )


samples = st.lists(
    st.builds(
        Sample,
        topic_queue=st.sampled_from(["health", "housing", "general"]),
        ticket_queue=st.sampled_from(["health", "housing", "general"]),
        confidence=st.floats(0, 1),
        gated=st.booleans(),
        answered=st.booleans(),
        ticket=st.booleans(),
        correct=st.none() | st.booleans(),
    ),
    max_size=40,
)


@given(
    confidence=st.floats(0, 1),
    was=st.floats(0, 1),
    now=st.floats(0, 1),
    words=st.integers(1, 12),
    rule=st.sampled_from([{}, {"urgent": True}, {"wants_human": True}, {"personal_case": True}]),
)
def test_a_replayed_decision_answers_exactly_when_decide_would_under_the_candidate(
    confidence: float, was: float, now: float, words: int, rule: dict[str, bool]
) -> None:
    a = assessment(confidence, **rule)
    s = sample_from_decision(recorded(a, was, words), BASE)
    assert s is not None
    again = decide(
        Situation(assessment=a, message_words=words), Thresholds(default=now).apply(BASE, 2)
    )
    assert would_answer(s, Thresholds(default=now)) == (again.action.value == "answer")


def test_held_messages_are_not_samples_and_failures_keep_their_handoff() -> None:
    row = recorded(assessment(0.9), 0.5)
    assert sample_from_decision({**row, "action": "hold"}, BASE) is None
    failed = sample_from_decision(
        {**row, "action": "handoff", "reason": "ai_timeout", "failure": "timeout"}, BASE
    )
    assert failed is not None and not failed.gated
    assert not would_answer(failed, Thresholds(default=0.0))


@given(recorded_=samples, low=st.floats(0, 1), high=st.floats(0, 1))
def test_the_answered_share_never_rises_with_the_threshold(
    recorded_: list[Sample], low: float, high: float
) -> None:
    low, high = sorted((low, high))
    at_low = simulate(recorded_, Thresholds(default=low), days=7)
    at_high = simulate(recorded_, Thresholds(default=high), days=7)
    assert at_high.answered <= at_low.answered
    # Every message is answered or not; what is not answered by the AI never shrinks.
    assert at_high.tickets >= at_low.tickets


@given(recorded_=samples, t=st.floats(0, 1))
def test_queue_figures_add_up_to_the_whole(recorded_: list[Sample], t: float) -> None:
    candidate = Thresholds(default=t, queues={"health": 0.9})
    whole = simulate(recorded_, candidate, days=3)
    parts = by_queue(recorded_, candidate, ["health", "housing", "general"], days=3)
    assert sum(p.answered for p in parts) == whole.answered
    assert sum(p.tickets for p in parts) == whole.tickets
    assert sum(p.messages for p in parts) == whole.messages


def test_per_queue_thresholds_rules_and_tickets_per_day() -> None:
    recorded_ = [sample("health", 0.7), sample("health", 0.95), sample("housing", 0.7)]
    candidate = Thresholds(default=0.6, queues={"health": 0.8})
    o = simulate(recorded_, candidate, days=2)
    assert (o.messages, o.answered, o.answered_share, o.tickets, o.tickets_per_day) == (
        3,
        2,
        0.6667,
        1,
        0.5,
    )
    health, housing = by_queue(recorded_, candidate, ["health", "housing"], days=2)
    assert (health.threshold, health.answered, health.tickets) == (0.8, 1, 1)
    assert (housing.threshold, housing.answered, housing.tickets) == (0.6, 1, 0)
    # Always to a person, and 1.0: nothing is answered there.
    ruled = Thresholds(default=0.6, always_handoff=("health",))
    assert simulate(recorded_, ruled, days=2).answered == 1
    assert simulate(recorded_, Thresholds(default=1.0), days=2).answered == 0


def test_precision_says_when_there_is_not_enough_data() -> None:
    few = [sample("health", 0.9, True), sample("health", 0.9, False), sample("health", 0.2, True)]
    p = simulate(few, Thresholds(default=0.5), days=1).precision
    # The 0.2 one would not be answered: two judged answers, one right.
    assert (p.value, p.source, p.samples, p.enough_data) == (0.5, "labels", 2, False)
    assert simulate([], Thresholds(default=0.5), days=1).precision.value is None

    many = [sample("health", 0.9, i % 4 != 0) for i in range(MIN_PRECISION_SAMPLES)]
    p = best_precision(few, many, Thresholds(default=0.5))
    assert (p.source, p.samples, p.value, p.enough_data) == ("eval", 10, 0.7, True)
    # Enough labels: they win over the question set.
    p = best_precision(many, few, Thresholds(default=0.5))
    assert (p.source, p.samples) == ("labels", MIN_PRECISION_SAMPLES)


def test_the_curve_moves_the_default_and_keeps_queue_thresholds() -> None:
    recorded_ = [sample("health", 0.3), sample("housing", 0.3)]
    points = curve(recorded_, Thresholds(default=0.5, queues={"health": 0.1}), days=1)
    assert [p.default for p in points][:3] == [0.0, 0.05, 0.1]
    at = {p.default: p.answered_share for p in points}
    assert (at[0.25], at[0.35], at[1.0]) == (1.0, 0.5, 0.5)


def test_an_evaluation_outcome_is_right_when_its_first_source_is_expected() -> None:
    policy = Thresholds(default=0.5).apply(BASE, 1)

    def outcome(expected: tuple[str, ...], confidence: float) -> EvalOutcome:
        q = Question(id="q", text="Milloin terveysasema on auki?", expected_docs=expected)
        a = assessment(confidence)
        return EvalOutcome(
            question=q,
            assessment=a,
            decision=decide(Situation(assessment=a, message_words=4), policy),
            latency_ms=1.0,
        )

    right = sample_from_eval(outcome(("d1",), 0.4), policy)
    assert (right.topic_queue, right.gated, right.answered, right.correct) == (
        "health",
        True,
        False,
        True,
    )
    assert would_answer(right, Thresholds(default=0.3))
    assert sample_from_eval(outcome(("other",), 0.9), policy).correct is False
    assert sample_from_eval(outcome((), 0.9), policy).correct is False


def test_tickets_per_day_count_the_days_there_were_messages() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    since = now - timedelta(days=30)
    assert observed_days(since, now, None) == 30
    assert observed_days(since, now, now - timedelta(days=2, hours=1)) == 3
    assert observed_days(since, now, now) == 1
    assert observed_days(since, now, since - timedelta(days=100)) == 30
