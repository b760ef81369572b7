"""The eval figures, computed through the router's own decide() on a scripted agent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.base import Assessment, TriageRequest
from agents.evaluate import Question, evaluate, fit_calibration, load_questions, sweep
from agents.retrieval import DENSE_CALIBRATION, LEXICAL_CALIBRATION, Calibration
from handoff.queues import default_policy
from router.events import SourceRef


class ScriptedAgent:
    """Returns a prepared assessment per question text."""

    name = "scripted"

    def __init__(self, answers: dict[str, Assessment]) -> None:
        self.answers = answers

    async def triage(self, request: TriageRequest) -> Assessment:
        return self.answers[request.text]


def assessment(doc: str | None, confidence: float, **kw: object) -> Assessment:
    sources = (SourceRef(doc_id=doc, title=doc, url=None),) if doc else ()
    return Assessment.model_validate(
        {
            "language": "fi",
            "reply_language": "fi",
            "answer": "Vastaus." if doc else None,
            "sources": sources,
            "confidence": confidence,
            "ranked_doc_ids": (doc,) if doc else (),
            "department": "P5" if doc else None,
            **kw,
        }
    )


QUESTIONS = [
    Question(id="a", text="kysymys yksi tässä", lang="fi", expected_docs=("d1",),
             expected_departments=("P5",)),
    Question(id="b", text="kysymys kaksi tässä", lang="fi", expected_docs=("d2",),
             expected_departments=("P5",)),
    Question(id="c", text="fråga tre här nu", lang="sv", expected_docs=("d3",),
             expected_departments=("P6",)),
    Question(id="d", text="off topic question here", lang="en"),
    Question(id="e", text="someone is not breathing", lang="en", urgent=True),
]  # fmt: skip
AGENT = ScriptedAgent(
    {
        "kysymys yksi tässä": assessment("d1", 0.9),
        "kysymys kaksi tässä": assessment("x", 0.7),  # answered, wrong document
        "fråga tre här nu": assessment("d3", 0.3),  # right document, too unsure
        "off topic question here": assessment("d9", 0.55),  # a false answer
        "someone is not breathing": assessment("d5", 0.9, urgent=True),
    }
)


async def test_figures_follow_the_data_readme() -> None:
    report = await evaluate(AGENT, QUESTIONS, default_policy())
    assert report.questions == 5
    assert report.answer_precision == pytest.approx(1 / 3, abs=1e-4)  # d1 right; x and d9 wrong
    assert report.coverage == pytest.approx(1 / 3, abs=1e-4)
    assert report.false_answer_rate == pytest.approx(1 / 2, abs=1e-4)  # d answered; e handed off
    assert report.hit_at_1 == pytest.approx(2 / 3, abs=1e-4)
    assert report.hit_at_5 == pytest.approx(2 / 3, abs=1e-4)
    assert report.routing_accuracy == pytest.approx(2 / 3, abs=1e-4)  # P6 expected for c, got P5
    assert report.urgent_recall == 1.0
    assert report.latency_ms_p50 is not None
    assert set(report.by_lang) == {"fi", "sv", "en"}
    assert report.by_lang["sv"].coverage == 0.0
    assert report.by_lang["en"].false_answer_rate == pytest.approx(1 / 2, abs=1e-4)


async def test_sweep_recomputes_decisions_without_triage() -> None:
    report = await evaluate(AGENT, QUESTIONS, default_policy())
    points = {p.threshold: p for p in sweep(report, default_policy(), [0.0, 0.6, 0.95])}
    assert points[0.0].answers == 4
    assert points[0.0].coverage == pytest.approx(2 / 3, abs=1e-4)
    assert points[0.6].answers == 2
    assert points[0.6].false_answer_rate == 0.0
    assert points[0.95].answers == 0
    assert points[0.95].answer_precision is None


async def test_threshold_override_and_progress() -> None:
    seen: list[tuple[int, int]] = []
    report = await evaluate(
        AGENT, QUESTIONS, default_policy(), threshold=0.2, progress=lambda n, t: seen.append((n, t))
    )
    assert report.threshold == 0.2
    assert report.coverage == pytest.approx(2 / 3, abs=1e-4)
    assert seen[-1] == (5, 5)


def test_load_questions(tmp_path: Path) -> None:
    path = tmp_path / "q.questions.jsonl"
    rows = [
        {"id": "1", "text": "Hei?", "lang": "fi", "expected_docs": [], "expected_departments": []},
        {"id": "2", "text": "Hej?", "lang": "sv", "expected_docs": ["d"], "urgent": True},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    qs = load_questions(path)
    assert [q.id for q in qs] == ["1", "2"]
    assert qs[1].expected_docs == ("d",)
    assert qs[1].urgent


@pytest.mark.parametrize("model", [DENSE_CALIBRATION, LEXICAL_CALIBRATION])
def test_confidence_is_monotone_and_anchored(model: Calibration) -> None:
    base = dict(zip(model.features, model.mean, strict=True))
    values = [
        model.confidence({**base, model.features[0]: m + k * s})
        for k in range(-4, 5)
        for m, s in [(model.mean[0], model.scale[0])]
    ]
    assert values == sorted(values)
    assert all(0.0 <= v <= 1.0 for v in values)
    # p_star is where confidence crosses the default threshold.
    assert model.p_star > 0.0


def test_fit_calibration_anchors_the_threshold_at_the_wanted_precision() -> None:
    # Right answers have high scores, wrong ones low, with an overlap in the middle.
    rows = [({"s": i / 100}, i >= 40 and not (i < 60 and i % 3 == 0)) for i in range(100)]
    model = fit_calibration(rows, rows, ["s"], target_precision=0.95)
    answered = [ok for f, ok in rows if model.confidence(f) >= 0.5]
    assert answered
    assert sum(answered) / len(answered) >= 0.95
    assert model.coef[0] > 0
    low, high = model.confidence({"s": 0.1}), model.confidence({"s": 0.9})
    assert 0.0 <= low < 0.5 < high <= 1.0
