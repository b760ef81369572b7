"""The knowledge-gap list: resident questions the knowledge base had no good answer for,
grouped by similar wording within a language, and its CSV export.

Pure apart from scikit-learn: character n-gram TF-IDF (as the offline agent's lexical index
uses, so inflected Finnish words still meet) and single-link grouping of questions whose
cosine similarity reaches ``SIMILAR``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from handoff.analytics import UNKNOWN, MessageFact
from router.decide import Action, ClarifyKind, HandoffReason

SIMILAR = 0.5
MAX_QUESTIONS = 2000  # the newest; the grouping compares every pair
SHOWN_EXAMPLES = 5
_GAP_REASONS = {HandoffReason.LOW_CONFIDENCE.value, HandoffReason.NO_ANSWER.value}


def is_gap(f: MessageFact) -> bool:
    """Handed off for low confidence or no answer, or asked to say more for the same cause."""
    if f.action == Action.HANDOFF.value:
        return f.reason in _GAP_REASONS
    return f.action == Action.CLARIFY.value and f.clarify == ClarifyKind.MORE_DETAIL.value


class GapQuestion(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    language: str
    confidence: float | None
    reason: str | None
    asked_at: datetime


class GapSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    language: str
    count: int = Field(description="Questions in the group")
    example: str = Field(description="The question most like the others")
    examples: list[str] = Field(description=f"Up to {SHOWN_EXAMPLES} different wordings")
    last_asked: datetime
    mean_confidence: float | None


class GapGroup(GapSummary):
    questions: list[GapQuestion] = Field(description="All of them, newest first")

    def summary(self) -> GapSummary:
        return GapSummary.model_validate(self.model_dump(exclude={"questions"}))


def gap_questions(facts: Sequence[MessageFact]) -> list[GapQuestion]:
    found = [
        GapQuestion(
            text=f.text.strip(),
            language=f.language or UNKNOWN,
            confidence=f.confidence,
            reason=f.reason or f.clarify,
            asked_at=f.created_at,
        )
        for f in facts
        if is_gap(f) and f.text.strip()
    ]
    found.sort(key=lambda q: q.asked_at, reverse=True)
    return found[:MAX_QUESTIONS]


def _components(size: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components of ``size`` items joined by ``pairs`` (single link), each in
    index order, in order of their first item."""
    parent = list(range(size))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(size):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _similarities(texts: Sequence[str]) -> npt.NDArray[np.float64]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(texts) == 1:
        return np.ones((1, 1))
    vectors = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), lowercase=True, sublinear_tf=True
    ).fit_transform(texts)
    # Rows are L2-normalised: the dot product is the cosine.
    return np.asarray((vectors @ vectors.T).toarray(), dtype=np.float64)


def group(questions: Sequence[GapQuestion], similar: float = SIMILAR) -> list[GapGroup]:
    """Similar questions of the same language together; the biggest groups first.

    CPU work (up to ``MAX_QUESTIONS``² similarities): call it off the event loop.
    """
    out: list[GapGroup] = []
    for language in sorted({q.language for q in questions}):
        mine = [q for q in questions if q.language == language]
        sims = _similarities([q.text for q in mine])
        pairs = np.argwhere(np.triu(sims >= similar, k=1))
        for members in _components(len(mine), ((int(i), int(j)) for i, j in pairs)):
            qs = sorted((mine[i] for i in members), key=lambda q: q.asked_at, reverse=True)
            # The member closest to all the others speaks for the group.
            closeness = sims[np.ix_(members, members)].sum(axis=1)
            central = members[int(np.argmax(closeness))]
            wordings = list(dict.fromkeys(q.text for q in qs))
            confidences = [q.confidence for q in qs if q.confidence is not None]
            out.append(
                GapGroup(
                    language=language,
                    count=len(qs),
                    example=mine[central].text,
                    examples=wordings[:SHOWN_EXAMPLES],
                    last_asked=qs[0].asked_at,
                    mean_confidence=round(sum(confidences) / len(confidences), 3)
                    if confidences
                    else None,
                    questions=qs,
                )
            )
    out.sort(key=lambda g: (-g.count, -g.last_asked.timestamp(), g.language, g.example))
    return out


CSV_HEADER = (
    "group",
    "language",
    "questions_in_group",
    "group_example",
    "question",
    "confidence",
    "reason",
    "asked_at",
)
# A spreadsheet runs a cell that starts like a formula; residents write these texts.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(groups: Sequence[GapGroup]) -> str:
    """One row per question, group by group, with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for n, g in enumerate(groups, 1):
        for q in g.questions:
            writer.writerow(
                (
                    n,
                    g.language,
                    g.count,
                    _cell(g.example),
                    _cell(q.text),
                    "" if q.confidence is None else f"{q.confidence:.3f}",
                    q.reason or "",
                    q.asked_at.isoformat(),
                )
            )
    return buffer.getvalue()
