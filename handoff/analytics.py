"""Service figures for admins: volume, AI resolution rate, handoff reasons and the time to
the first human response. Pure (no I/O, no clock): ``handoff.admin.insights`` reads the
facts from the database for a date range and these functions count them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from router.decide import Action
from router.stats import percentile

UNKNOWN = "und"
# The longest period the admin figures and the what-if look back (also how long retention
# keeps the anonymised decisions they are made of).
ANALYTICS_DAYS = 366


class MessageFact(BaseModel):
    """One resident message and what was decided on it (a ``decision`` row)."""

    model_config = ConfigDict(frozen=True)

    conversation_id: str
    created_at: datetime
    channel: str
    language: str | None
    queue: str
    action: str
    reason: str | None = None
    clarify: str | None = None
    confidence: float | None = None
    text: str = ""


class TicketFact(BaseModel):
    model_config = ConfigDict(frozen=True)

    queue: str
    created_at: datetime
    first_response_at: datetime | None


class Volume(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: int
    by_channel: dict[str, int]
    by_language: dict[str, int]
    by_queue: dict[str, int]


class Resolution(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: int = Field(description="Messages the AI triaged (not those a person owned)")
    answered: int = Field(description="Answered by the AI")
    resolved: int = Field(description="Answered by the AI with no handoff after it")
    rate: float | None = Field(description="resolved / messages")


class ResponseTimes(BaseModel):
    model_config = ConfigDict(frozen=True)

    tickets: int
    answered: int = Field(description="Tickets a person has replied to")
    median_minutes: float | None
    p90_minutes: float | None


class FirstResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    overall: ResponseTimes
    by_queue: dict[str, ResponseTimes]


def share(part: int, whole: int) -> float | None:
    """``part / whole`` to four decimals, as every share the admin figures show; None of
    nothing."""
    return round(part / whole, 4) if whole else None


def _counts(values: Iterable[str]) -> dict[str, int]:
    # Largest first, then by name: the order a table and a bar chart show them in.
    return dict(sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0])))


def volume(facts: Sequence[MessageFact]) -> Volume:
    return Volume(
        messages=len(facts),
        by_channel=_counts(f.channel for f in facts),
        by_language=_counts(f.language or UNKNOWN for f in facts),
        by_queue=_counts(f.queue for f in facts),
    )


def resolution(facts: Sequence[MessageFact]) -> Resolution:
    """An AI answer resolves the question when no handoff follows it in its conversation."""
    triaged = [f for f in facts if f.action != Action.HOLD.value]
    last_handoff: dict[str, datetime] = {}
    for f in facts:
        if f.action == Action.HANDOFF.value:
            seen = last_handoff.get(f.conversation_id)
            if seen is None or f.created_at > seen:
                last_handoff[f.conversation_id] = f.created_at
    answers = [f for f in triaged if f.action == Action.ANSWER.value]
    resolved = sum(
        1
        for f in answers
        if (h := last_handoff.get(f.conversation_id)) is None or h <= f.created_at
    )
    return Resolution(
        messages=len(triaged),
        answered=len(answers),
        resolved=resolved,
        rate=share(resolved, len(triaged)),
    )


def handoff_reasons(facts: Sequence[MessageFact]) -> dict[str, int]:
    return _counts(f.reason or UNKNOWN for f in facts if f.action == Action.HANDOFF.value)


def _times(tickets: Sequence[TicketFact]) -> ResponseTimes:
    waits = [
        (t.first_response_at - t.created_at).total_seconds() / 60
        for t in tickets
        if t.first_response_at is not None
    ]

    def rounded(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return ResponseTimes(
        tickets=len(tickets),
        answered=len(waits),
        median_minutes=rounded(percentile(waits, 50)),
        p90_minutes=rounded(percentile(waits, 90)),
    )


def first_response(tickets: Sequence[TicketFact], queues: Sequence[str]) -> FirstResponse:
    """Minutes from a ticket's opening to a person's first reply, overall and per queue
    (every queue of ``queues``, also without tickets, then any other seen)."""
    mine: dict[str, list[TicketFact]] = defaultdict(list)
    for t in tickets:
        mine[t.queue].append(t)
    names = list(queues) + sorted(set(mine) - set(queues))
    return FirstResponse(
        overall=_times(tickets), by_queue={q: _times(mine.get(q, [])) for q in names}
    )


class LabelFigures(BaseModel):
    """What people said about the AI's work on tickets (``handoff.labels``)."""

    model_config = ConfigDict(frozen=True)

    labelled: int = Field(description="Tickets with a label")
    department_judged: int
    department_right: int
    department_rate: float | None
    answer_judged: int
    answer_right: int
    answer_rate: float | None


def label_figures(labels: Sequence[tuple[bool | None, bool | None]]) -> LabelFigures:
    """From (department_correct, answer_correct) per labelled ticket; None: not judged."""
    departments = [d for d, _ in labels if d is not None]
    answers = [a for _, a in labels if a is not None]
    return LabelFigures(
        labelled=len(labels),
        department_judged=len(departments),
        department_right=sum(departments),
        department_rate=share(sum(departments), len(departments)),
        answer_judged=len(answers),
        answer_right=sum(answers),
        answer_rate=share(sum(answers), len(answers)),
    )
