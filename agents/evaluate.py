"""Evaluation: run question sets through the same triage and decision code as the router.

Pure library (the ``neuvonta eval`` command wraps it). Figures follow
``data/README.md``: precision and coverage of automatic answers, false answers to questions
nobody should answer automatically, retrieval hit@k, routing accuracy, urgent recall and
latency, overall and per language.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from agents.base import Assessment, TriageAgent, TriageRequest
from router.decide import Action, Decision, Situation, decide
from router.policy import Policy
from router.stats import percentile

if TYPE_CHECKING:  # retrieval imports scikit-learn: the web side loads this module too
    from agents.retrieval import Calibration


class Question(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    text: str
    lang: str = "und"
    expected_docs: tuple[str, ...] = ()
    expected_departments: tuple[str, ...] = ()
    urgent: bool = False


class Outcome(BaseModel):
    """One question's assessment and decision, kept so sweeps need no re-triage."""

    model_config = ConfigDict(frozen=True)

    question: Question
    assessment: Assessment
    decision: Decision
    latency_ms: float


class Figures(BaseModel):
    model_config = ConfigDict(frozen=True)

    questions: int
    answer_precision: float | None
    coverage: float | None
    false_answer_rate: float | None
    hit_at_1: float | None
    hit_at_5: float | None
    routing_accuracy: float | None
    urgent_recall: float | None
    latency_ms_p50: float | None
    latency_ms_p99: float | None


class Report(Figures):
    threshold: float | None = None
    by_lang: dict[str, Figures] = {}
    outcomes: tuple[Outcome, ...] = ()


class SweepPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    threshold: float
    answers: int
    answer_precision: float | None
    coverage: float | None
    false_answer_rate: float | None


SWEEP_THRESHOLDS: tuple[float, ...] = tuple(i / 20 for i in range(21))


def load_questions(path: Path | str) -> list[Question]:
    with Path(path).open(encoding="utf-8") as f:
        return [Question.model_validate_json(line) for line in f if line.strip()]


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    p = percentile(values, q)
    return None if p is None else round(p, 2)


def _answered(o: Outcome) -> bool:
    return o.decision.action is Action.ANSWER


def _correct(o: Outcome) -> bool:
    a = o.assessment
    return _answered(o) and bool(a.sources) and a.sources[0].doc_id in o.question.expected_docs


def figures(outcomes: Sequence[Outcome]) -> Figures:
    answerable = [o for o in outcomes if o.question.expected_docs]
    unanswerable = [o for o in outcomes if not o.question.expected_docs]
    answered = [o for o in outcomes if _answered(o)]
    routed = [o for o in outcomes if o.question.expected_departments]
    urgent = [o for o in outcomes if o.question.urgent]
    correct = sum(_correct(o) for o in outcomes)

    def hit(o: Outcome, k: int) -> bool:
        return any(d in o.question.expected_docs for d in o.assessment.ranked_doc_ids[:k])

    latencies = [o.latency_ms for o in outcomes]
    return Figures(
        questions=len(outcomes),
        answer_precision=_ratio(correct, len(answered)),
        coverage=_ratio(correct, len(answerable)),
        false_answer_rate=_ratio(sum(_answered(o) for o in unanswerable), len(unanswerable)),
        hit_at_1=_ratio(sum(hit(o, 1) for o in answerable), len(answerable)),
        hit_at_5=_ratio(sum(hit(o, 5) for o in answerable), len(answerable)),
        routing_accuracy=_ratio(
            sum(o.assessment.department in o.question.expected_departments for o in routed),
            len(routed),
        ),
        urgent_recall=_ratio(
            sum(
                o.decision.action is Action.HANDOFF and o.decision.urgent and o.assessment.urgent
                for o in urgent
            ),
            len(urgent),
        ),
        latency_ms_p50=_percentile(latencies, 50),
        latency_ms_p99=_percentile(latencies, 99),
    )


def _policy_at(policy: Policy, threshold: float | None) -> Policy:
    if threshold is None:
        return policy
    # One threshold everywhere: what-if for the whole policy.
    return policy.model_copy(
        update={
            "default_threshold": threshold,
            "queue_thresholds": dict.fromkeys(policy.queue_thresholds, threshold),
        }
    )


def _decide(question: Question, assessment: Assessment, policy: Policy) -> Decision:
    situation = Situation(assessment=assessment, message_words=len(question.text.split()))
    return decide(situation, policy)


def report(
    outcomes: Sequence[Outcome], threshold: float | None = None, keep: bool = True
) -> Report:
    langs = sorted({o.question.lang for o in outcomes})
    return Report(
        **figures(outcomes).model_dump(),
        threshold=threshold,
        by_lang={lang: figures([o for o in outcomes if o.question.lang == lang]) for lang in langs},
        outcomes=tuple(outcomes) if keep else (),
    )


async def evaluate(
    agent: TriageAgent,
    questions: Iterable[Question],
    policy: Policy,
    *,
    threshold: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Triage every question (one at a time, as latency is part of the figures) and decide."""
    qs = list(questions)
    effective = _policy_at(policy, threshold)
    outcomes: list[Outcome] = []
    for n, q in enumerate(qs, 1):
        request = TriageRequest(text=q.text, channel="web", conversation_id=f"eval-{q.id}")
        started = time.perf_counter()
        assessment = await agent.triage(request)
        latency = (time.perf_counter() - started) * 1000
        outcomes.append(
            Outcome(
                question=q,
                assessment=assessment,
                decision=_decide(q, assessment, effective),
                latency_ms=latency,
            )
        )
        if progress is not None:
            progress(n, len(qs))
    return report(outcomes, threshold)


def redecide(outcomes: Sequence[Outcome], policy: Policy) -> list[Outcome]:
    """The same assessments decided under another policy (no re-triage)."""
    return [
        o.model_copy(update={"decision": _decide(o.question, o.assessment, policy)})
        for o in outcomes
    ]


def sweep(
    outcomes: Sequence[Outcome] | Report,
    policy: Policy,
    thresholds: Iterable[float] = SWEEP_THRESHOLDS,
) -> list[SweepPoint]:
    """Coverage and precision per threshold, recomputed from stored assessments."""
    stored = outcomes.outcomes if isinstance(outcomes, Report) else outcomes
    points = []
    for t in thresholds:
        f = figures(redecide(stored, _policy_at(policy, t)))
        points.append(
            SweepPoint(
                threshold=round(t, 4),
                answers=sum(_answered(o) for o in redecide(stored, _policy_at(policy, t))),
                answer_precision=f.answer_precision,
                coverage=f.coverage,
                false_answer_rate=f.false_answer_rate,
            )
        )
    return points


def calibration_rows(outcomes: Sequence[Outcome]) -> list[tuple[dict[str, float], bool]]:
    """(features, top document is right) for questions that reached retrieval scoring.

    Questions settled by rules (urgent, personal case, asks for a person, small talk) are left
    out: their confidence never decides anything.
    """
    rows = []
    for o in outcomes:
        a = o.assessment
        if a.urgent or a.personal_case or a.wants_human or not a.scores or not a.ranked_doc_ids:
            continue
        rows.append((dict(a.scores), a.ranked_doc_ids[0] in o.question.expected_docs))
    return rows


def fit_calibration(
    fit_rows: Sequence[tuple[dict[str, float], bool]],
    anchor_rows: Sequence[tuple[dict[str, float], bool]],
    features: Sequence[str],
    *,
    target_precision: float = 0.95,
    regularisation: float = 1.0,
) -> Calibration:
    """Fit the logistic confidence model, then anchor ``p_star`` on ``anchor_rows``.

    ``p_star`` is the lowest probability at which the answers in ``anchor_rows`` (the kind of
    questions the product answers) are at least ``target_precision`` right.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from agents.retrieval import Calibration

    x = np.array([[f.get(k, 0.0) for k in features] for f, _ in fit_rows])
    y = np.array([int(ok) for _, ok in fit_rows])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    model = LogisticRegression(C=regularisation, max_iter=1000).fit((x - mean) / scale, y)
    draft = Calibration(
        features=tuple(features),
        mean=tuple(round(float(v), 5) for v in mean),
        scale=tuple(round(float(v), 5) for v in scale),
        coef=tuple(round(float(v), 4) for v in model.coef_[0]),
        intercept=round(float(model.intercept_[0]), 4),
        p_star=0.5,
    )
    scored = sorted(((draft.probability(f), ok) for f, ok in anchor_rows), reverse=True)
    p_star, right = 0.99, 0
    for n, (p, ok) in enumerate(scored, 1):
        right += ok
        if right / n >= target_precision:
            p_star = p
    return replace(draft, p_star=round(max(min(p_star, 0.99), 0.05), 4))
