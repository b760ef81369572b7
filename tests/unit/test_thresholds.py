"""The admin-set thresholds: validation, merging, the audit diff and laying them over a policy."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.base import Assessment
from handoff.queues import DEFAULT_QUEUES, default_policy
from handoff.thresholds import (
    Difference,
    InvalidThresholds,
    Thresholds,
    ThresholdState,
    by_problem,
    checked,
    describe,
    diff,
    merge,
    note_problem,
    problems,
)
from router.decide import Action, HandoffReason, Situation, decide
from router.events import SourceRef

QUEUES = [q.name for q in DEFAULT_QUEUES]
BASE = default_policy(0.5)


def test_the_configured_policy_is_version_zero_with_no_queue_thresholds() -> None:
    t = Thresholds.of(BASE)
    assert t == Thresholds(default=0.5)
    state = ThresholdState.at(0, t)
    assert state.model_dump() == {
        "version": 0,
        "default": 0.5,
        "queues": {},
        "always_handoff": [],
        "changed_by": None,
        "changed_at": None,
    }
    assert ThresholdState.from_json(state.to_json()) == state


@pytest.mark.parametrize("value", [0.0, 0.35, 1.0, 1])
def test_thresholds_from_0_to_1_are_valid(value: float) -> None:
    t = Thresholds(default=value, queues={"health": value}, always_handoff=("social",))
    assert problems(t, QUEUES) == []


@pytest.mark.parametrize("value", [-0.01, 1.01, 5.0, math.nan, math.inf, -math.inf])
def test_thresholds_outside_0_to_1_are_refused_with_the_reason(value: float) -> None:
    found = problems(Thresholds(default=value, queues={"health": value}), QUEUES)
    assert [p.loc for p in found] == [["body", "default"], ["body", "queues", "health"]]
    assert {p.type for p in found} == {"threshold_range"}
    assert found[0].msg.startswith("default: a threshold is a number from 0 to 1")
    assert "1: the AI never answers on its own" in found[0].msg
    assert found[1].msg.startswith("health: ")


def test_unknown_queues_are_refused_listing_the_valid_ones() -> None:
    t = Thresholds(default=0.5, queues={"helth": 0.8}, always_handoff=("social", "sosiaali"))
    found = problems(t, QUEUES)
    assert [(p.loc, p.type, p.input) for p in found] == [
        (["body", "queues", "helth"], "unknown_queue", "helth"),
        (["body", "always_handoff", 1], "unknown_queue", "sosiaali"),
    ]
    assert found[0].msg == "unknown queue 'helth'; the queues are: " + ", ".join(QUEUES)
    with pytest.raises(InvalidThresholds) as e:
        checked(t, QUEUES)
    assert len(e.value.problems) == 2
    assert "unknown queue 'sosiaali'" in str(e.value)


def test_checked_thresholds_are_normalized() -> None:
    t = checked(
        Thresholds(
            default=0.5, queues={"social": 0.9, "health": 0.8}, always_handoff=("social", "health")
        ),
        QUEUES,
    )
    assert list(t.queues) == ["health", "social"]
    assert t.always_handoff == ("health", "social")
    assert (
        t
        == Thresholds(
            default=0.5,
            queues={"health": 0.8, "social": 0.9},
            always_handoff=("social", "health", "social"),
        ).normalized()
    )


def test_who_and_the_note_are_checked() -> None:
    assert by_problem("anna") is None
    assert by_problem("  ") is not None
    assert by_problem("x" * 65) is not None
    assert note_problem(None) is None
    assert note_problem("pilot week") is None
    problem = note_problem("x" * 1001)
    assert problem is not None and problem.loc == ["body", "note"]


def test_merge_changes_only_what_is_given() -> None:
    current = Thresholds(default=0.5, queues={"health": 0.8, "social": 0.9}, always_handoff=("x",))
    assert merge(current) == current.normalized()
    merged = merge(
        current,
        default=0.6,
        queues={"housing": 0.7, "health": 0.85},
        clear_queues=["social"],
        always_handoff=["safety"],
        no_always_handoff=["x"],
    )
    assert merged == Thresholds(
        default=0.6, queues={"health": 0.85, "housing": 0.7}, always_handoff=("safety",)
    )


def test_the_diff_lists_each_changed_value() -> None:
    old = Thresholds(default=0.5, queues={"health": 0.8, "social": 0.9}, always_handoff=("social",))
    new = Thresholds(
        default=0.6, queues={"health": 0.8, "housing": 1.0}, always_handoff=("health",)
    )
    changes = diff(old, new)
    assert changes == [
        Difference(what="default", old=0.5, new=0.6),
        Difference(what="queue", queue="housing", old=None, new=1.0),
        Difference(what="queue", queue="social", old=0.9, new=None),
        Difference(what="always_handoff", queue="health", old=False, new=True),
        Difference(what="always_handoff", queue="social", old=True, new=False),
    ]
    assert describe(changes) == (
        "default: 0.5 → 0.6; housing: default → 1; social: 0.9 → default; "
        "health: always to a person on; social: always to a person off"
    )
    assert diff(old, old) == []
    assert describe([]) == "no change"


@given(
    st.floats(0, 1),
    st.dictionaries(st.sampled_from(QUEUES), st.floats(0, 1)),
    st.sets(st.sampled_from(QUEUES)),
)
def test_a_diff_is_empty_exactly_when_nothing_changed(
    default: float, queues: dict[str, float], rules: set[str]
) -> None:
    old = Thresholds.of(BASE)
    new = Thresholds(default=default, queues=queues, always_handoff=tuple(rules)).normalized()
    assert (diff(old, new) == []) == (new == old)


def _answerable(department: str, confidence: float) -> Situation:
    return Situation(
        assessment=Assessment(
            language="fi",
            reply_language="fi",
            answer="Kirjasto on auki arkisin.",
            sources=(SourceRef(doc_id="d1", title="Kirjasto", url=None),),
            confidence=confidence,
            department=department,
        ),
        message_words=6,
    )


def test_applied_thresholds_drive_decide_and_carry_their_version() -> None:
    state = ThresholdState.at(
        4, Thresholds(default=0.5, queues={"health": 0.8}, always_handoff=("social",))
    )
    policy = state.policy(BASE)
    # The configured parts stay.
    assert policy.department_queues == BASE.department_queues
    assert policy.routing_floor == BASE.routing_floor
    answered = decide(_answerable("P25", 0.7), policy)  # culture-leisure: the default 0.5
    assert (answered.action, answered.threshold, answered.policy_version) == (
        Action.ANSWER,
        0.5,
        4,
    )
    held = decide(_answerable("P5", 0.7), policy)  # health: 0.8
    assert (held.action, held.reason, held.threshold) == (
        Action.HANDOFF,
        HandoffReason.LOW_CONFIDENCE,
        0.8,
    )
    ruled = decide(_answerable("P4", 0.99), policy)  # social: always to a person
    assert (ruled.action, ruled.reason) == (Action.HANDOFF, HandoffReason.QUEUE_RULE)


def test_threshold_one_means_the_ai_never_answers_even_when_certain() -> None:
    policy = ThresholdState.at(1, Thresholds(default=0.5, queues={"health": 1.0})).policy(BASE)
    d = decide(_answerable("P5", 1.0), policy)
    assert (d.action, d.reason) == (Action.HANDOFF, HandoffReason.LOW_CONFIDENCE)
