"""What-if: what candidate thresholds would have done to the messages already decided.

Pure (no I/O, no clock). Each resident message becomes a ``Sample``: the confidence the AI
had, the queue whose threshold applied, where a handoff goes, and, when known, whether the
AI's answer was right (a person's label on the ticket, or an evaluation question's expected
documents). ``simulate`` then says, for a candidate ``Thresholds``, the share of messages
the AI would answer, the expected precision of those answers, and the tickets per day each
queue would get.

Only messages where the threshold was the deciding rule move: an answer with sources that
no earlier rule (urgent, asks for a person, personal case, small talk, turn limit, AI
failure) settled. The rest keep what happened to them. This mirrors ``router.decide``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.evaluate import Outcome as EvalOutcome
from handoff.analytics import share
from handoff.thresholds import Thresholds
from router.decide import Action, ClarifyKind, HandoffReason
from router.policy import Policy

# Fewer judged answers than this and a precision figure is mostly noise: say so instead.
MIN_PRECISION_SAMPLES = 10
CURVE: tuple[float, ...] = tuple(i / 20 for i in range(21))
# Outcomes where the threshold was what decided (or would have, but for the queue rule).
_GATED_REASONS = {HandoffReason.LOW_CONFIDENCE.value, HandoffReason.QUEUE_RULE.value}

Source = Literal["labels", "eval"]


class Sample(BaseModel):
    model_config = ConfigDict(frozen=True)

    topic_queue: str = Field(description="The queue whose threshold applies")
    ticket_queue: str = Field(description="Where the case goes when a person answers")
    confidence: float
    gated: bool = Field(description="The threshold decides: an answer with sources, no rule")
    answered: bool = Field(description="What happened (kept when not gated)")
    ticket: bool = Field(description="Whether it went to a person (kept when not gated)")
    correct: bool | None = Field(None, description="Was the AI's answer right; None: unknown")


def gated(action: str, reason: str | None, clarify: str | None, answerable: bool) -> bool:
    """Whether the threshold was the deciding rule for a recorded decision."""
    if not answerable:
        return False
    if action == Action.ANSWER.value:
        return True
    if action == Action.HANDOFF.value:
        return reason in _GATED_REASONS
    # A short message below the threshold gets a clarifying question instead of a handoff.
    return action == Action.CLARIFY.value and clarify == ClarifyKind.MORE_DETAIL.value


def sample_from_decision(
    decision: Mapping[str, Any], policy: Policy, answer_correct: bool | None = None
) -> Sample | None:
    """A recorded decision (a ``decision`` row) as a sample; None for messages the AI did
    not triage because a person owned the conversation."""
    action = str(decision["action"])
    if action == Action.HOLD.value:
        return None
    confidence = decision.get("confidence")
    department = decision.get("department")
    answerable = (
        confidence is not None
        and not decision.get("failure")
        and bool(decision.get("draft"))
        and bool(decision.get("sources"))
    )
    recorded_queue = str(decision["queue"])
    return Sample(
        topic_queue=policy.queue_for(department) if confidence is not None else recorded_queue,
        ticket_queue=(
            policy.ticket_queue_for(department, float(confidence))
            if confidence is not None
            else recorded_queue
        ),
        confidence=float(confidence or 0.0),
        gated=gated(action, decision.get("reason"), decision.get("clarify"), answerable),
        answered=action == Action.ANSWER.value,
        ticket=action == Action.HANDOFF.value,
        correct=answer_correct,
    )


def sample_from_eval(outcome: EvalOutcome, policy: Policy) -> Sample:
    """An evaluation question's outcome as a sample. Its answer is right when the first
    source is an expected document; any answer to a question that has none is wrong."""
    a, d, q = outcome.assessment, outcome.decision, outcome.question
    answerable = a.answer is not None and bool(a.sources)
    right = answerable and a.sources[0].doc_id in q.expected_docs
    return Sample(
        topic_queue=policy.queue_for(a.department),
        ticket_queue=policy.ticket_queue_for(a.department, a.confidence),
        confidence=a.confidence,
        gated=gated(
            d.action.value,
            d.reason.value if d.reason else None,
            d.clarify.value if d.clarify else None,
            answerable,
        ),
        answered=d.action is Action.ANSWER,
        ticket=d.action is Action.HANDOFF,
        correct=right if answerable else None,
    )


def threshold_of(candidate: Thresholds, queue: str) -> float:
    return candidate.queues.get(queue, candidate.default)


def would_answer(sample: Sample, candidate: Thresholds) -> bool:
    if not sample.gated:
        return sample.answered
    if sample.topic_queue in candidate.always_handoff:
        return False
    threshold = threshold_of(candidate, sample.topic_queue)
    # As in decide(): 1.0 means people answer, even a fully confident draft stays a draft.
    return threshold < 1.0 and sample.confidence >= threshold


def _goes_to_person(sample: Sample, answers: bool) -> bool:
    """``answers``: ``would_answer(sample, candidate)``, worked out once per sample."""
    return not answers if sample.gated else sample.ticket


class Precision(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: float | None = Field(description="Share of the judged answers that were right")
    source: Source | None = Field(description="labels: people's labels; eval: a question set")
    samples: int = Field(description="Judged answers the figure rests on")
    enough_data: bool = Field(description=f"At least {MIN_PRECISION_SAMPLES} judged answers")


def precision(samples: Iterable[Sample], candidate: Thresholds, source: Source) -> Precision:
    """Right answers among the answers that would be given and whose correctness is known."""
    judged = [s.correct for s in samples if s.correct is not None and would_answer(s, candidate)]
    right = sum(1 for c in judged if c)
    return Precision(
        value=share(right, len(judged)),
        source=source,
        samples=len(judged),
        enough_data=len(judged) >= MIN_PRECISION_SAMPLES,
    )


def best_precision(
    recorded: Sequence[Sample], evaluated: Sequence[Sample] | None, candidate: Thresholds
) -> Precision:
    """From labels when there are enough of them, else from the evaluation set if there is
    one, else from what labels there are (saying that it is not enough)."""
    labels = precision(recorded, candidate, "labels")
    if labels.enough_data or not evaluated:
        return labels
    from_eval = precision(evaluated, candidate, "eval")
    return from_eval if from_eval.samples >= labels.samples else labels


class QueueOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    queue: str
    threshold: float = Field(description="The candidate threshold of the queue")
    always_handoff: bool
    messages: int = Field(description="Messages whose topic is this queue")
    answered: int
    answered_share: float | None
    tickets: int = Field(description="Cases that would reach this queue's people")
    tickets_per_day: float


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: int
    answered: int
    answered_share: float | None
    precision: Precision
    tickets: int
    tickets_per_day: float
    days: int


class CurvePoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    default: float = Field(description="The default threshold (per-queue ones kept)")
    answered_share: float | None
    precision: float | None
    precision_samples: int
    tickets_per_day: float


def observed_days(since: datetime, until: datetime, first: datetime | None) -> int:
    """Whole days (at least 1) from ``since``, or from the first decision when the system
    is younger than that, to ``until``: tickets per day over the days there were messages."""
    start = since if first is None else max(since, first)
    return max(1, math.ceil((until - start).total_seconds() / 86400))


def _per_day(n: int, days: int) -> float:
    return round(n / max(days, 1), 2)


def simulate(
    recorded: Sequence[Sample],
    candidate: Thresholds,
    *,
    days: int,
    evaluated: Sequence[Sample] | None = None,
) -> Outcome:
    """The figures for ``candidate`` over ``recorded`` (messages of ``days`` days)."""
    says = [would_answer(s, candidate) for s in recorded]
    answered = sum(says)
    tickets = sum(_goes_to_person(s, a) for s, a in zip(recorded, says, strict=True))
    return Outcome(
        messages=len(recorded),
        answered=answered,
        answered_share=share(answered, len(recorded)),
        precision=best_precision(recorded, evaluated, candidate),
        tickets=tickets,
        tickets_per_day=_per_day(tickets, days),
        days=days,
    )


def by_queue(
    recorded: Sequence[Sample], candidate: Thresholds, queues: Sequence[str], *, days: int
) -> list[QueueOutcome]:
    """Per queue: its messages and their answers (by topic), and the tickets it would get."""
    messages: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    tickets: Counter[str] = Counter()
    for s in recorded:  # one pass, each sample's answer worked out once
        says = would_answer(s, candidate)
        messages[s.topic_queue] += 1
        answered[s.topic_queue] += says
        tickets[s.ticket_queue] += _goes_to_person(s, says)
    return [
        QueueOutcome(
            queue=q,
            threshold=threshold_of(candidate, q),
            always_handoff=q in candidate.always_handoff,
            messages=messages[q],
            answered=answered[q],
            answered_share=share(answered[q], messages[q]),
            tickets=tickets[q],
            tickets_per_day=_per_day(tickets[q], days),
        )
        for q in queues
    ]


def curve(
    recorded: Sequence[Sample],
    candidate: Thresholds,
    *,
    days: int,
    evaluated: Sequence[Sample] | None = None,
    defaults: Sequence[float] = CURVE,
) -> list[CurvePoint]:
    """The figures as the default threshold moves, the per-queue thresholds as given."""
    points = []
    for d in defaults:
        at = candidate.model_copy(update={"default": d})
        o = simulate(recorded, at, days=days, evaluated=evaluated)
        points.append(
            CurvePoint(
                default=round(d, 4),
                answered_share=o.answered_share,
                precision=o.precision.value,
                precision_samples=o.precision.samples,
                tickets_per_day=o.tickets_per_day,
            )
        )
    return points
