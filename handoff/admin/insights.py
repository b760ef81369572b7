"""Reading the facts behind the what-if simulator and the service figures from the
database, for a date range. The counting is pure: ``handoff.whatif``,
``handoff.analytics`` and ``handoff.gaps``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.base import TriageAgent
from agents.evaluate import Question, evaluate, load_questions
from handoff.analytics import MessageFact, TicketFact
from handoff.labels import LABEL
from handoff.whatif import Sample, sample_from_decision, sample_from_eval
from router.policy import Policy
from router.tables import ConversationRow, DecisionRow, MessageRow, TicketRow

DECISION = DecisionRow.__table__  # type: ignore[attr-defined]
MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]
CONVERSATION = ConversationRow.__table__  # type: ignore[attr-defined]
TICKET = TicketRow.__table__  # type: ignore[attr-defined]
# An admin's evaluation questions (the ``neuvonta eval --questions`` format) in the data
# folder: the what-if's precision before people have labelled enough tickets.
EVAL_QUESTIONS = "whatif.questions.jsonl"
# The longest wait for a fresh agent's passage vectors before the questions run anyway.
READY_SECONDS = 600.0

log = logging.getLogger(__name__)


class Facts:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def messages(self, since: datetime) -> list[MessageFact]:
        """Every resident message decided on since ``since``, with its channel and text."""
        d = DECISION.c
        q = (
            select(
                d.conversation_id,
                d.created_at,
                CONVERSATION.c.channel,
                d.language,
                d.queue,
                d.action,
                d.reason,
                d.clarify,
                d.confidence,
                MESSAGE.c.text,
            )
            .join(MESSAGE, MESSAGE.c.id == d.message_id)
            .join(CONVERSATION, CONVERSATION.c.id == d.conversation_id)
            .where(d.created_at >= since)
        )
        async with self.engine.connect() as conn:
            found = [dict(r._mapping) for r in await conn.execute(q)]
        # One validated model per message of the period: off the event loop.
        return await asyncio.to_thread(lambda: [MessageFact.model_validate(r) for r in found])

    async def first_decision_at(self) -> datetime | None:
        async with self.engine.connect() as conn:
            first = (await conn.execute(select(func.min(DECISION.c.created_at)))).scalar_one()
        # func.min() loses the column's type: SQLite hands back text or a naive datetime.
        if first is None:
            return None
        value = first if isinstance(first, datetime) else datetime.fromisoformat(str(first))
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    async def tickets(self, since: datetime) -> list[TicketFact]:
        t = TICKET.c
        q = select(t.queue, t.created_at, t.first_response_at).where(t.created_at >= since)
        async with self.engine.connect() as conn:
            return [TicketFact.model_validate(dict(r._mapping)) for r in await conn.execute(q)]

    async def labels(self, since: datetime) -> list[tuple[bool | None, bool | None]]:
        """(department_correct, answer_correct) of the tickets opened since ``since``."""
        q = (
            select(LABEL.c.department_correct, LABEL.c.answer_correct)
            .join(TICKET, TICKET.c.id == LABEL.c.ticket_id)
            .where(TICKET.c.created_at >= since)
        )
        async with self.engine.connect() as conn:
            return [(r.department_correct, r.answer_correct) for r in await conn.execute(q)]

    async def samples(self, since: datetime, policy: Policy) -> list[Sample]:
        """The decisions since ``since`` as what-if samples, with the label of the ticket
        each one opened (whether its draft was right)."""
        d = DECISION.c
        q = (
            select(
                d.action,
                d.reason,
                d.clarify,
                d.queue,
                d.confidence,
                d.department,
                d.draft,
                d.sources,
                d.failure,
                LABEL.c.answer_correct,
            )
            .outerjoin(LABEL, LABEL.c.ticket_id == d.ticket_id)
            .where(d.created_at >= since)
        )
        async with self.engine.connect() as conn:
            found = [dict(r._mapping) for r in await conn.execute(q)]

        def convert() -> list[Sample]:
            samples = (sample_from_decision(r, policy, r["answer_correct"]) for r in found)
            return [s for s in samples if s is not None]

        # One validated model per decision of the period: off the event loop.
        return await asyncio.to_thread(convert)


class EvalSamples:
    """An evaluation question set, run once through ``agents.evaluate`` with an agent the
    factory builds (the first call waits for it), as what-if samples."""

    def __init__(
        self,
        agent: Callable[[], Awaitable[TriageAgent]],
        questions: Sequence[Question],
        policy: Policy,
    ) -> None:
        self.agent = agent
        self.questions = list(questions)
        self.policy = policy
        self._samples: list[Sample] | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> list[Sample]:
        async with self._lock:
            if self._samples is None:
                agent = await self.agent()
                try:
                    # As ``neuvonta eval``: the offline agent's figures once its vectors exist.
                    if (wait := getattr(agent, "wait_ready", None)) is not None:
                        await asyncio.to_thread(wait, READY_SECONDS)
                    report = await evaluate(agent, self.questions, self.policy)
                finally:
                    # The agent is for this one run: stop its vector indexer (still at work
                    # when the wait above ran out), as serve does the worker's before exit.
                    if (close := getattr(agent, "close", None)) is not None:
                        await asyncio.to_thread(close)
                self._samples = [sample_from_eval(o, self.policy) for o in report.outcomes]
                log.info("what-if: %d evaluation questions run", len(self._samples))
            return self._samples


def eval_source(
    path: Path, agent: Callable[[], Awaitable[TriageAgent]], policy: Policy
) -> EvalSamples | None:
    """The question set at ``path`` for the what-if, run on first use with ``agent()``;
    None when there is no such file or it cannot be read (logged)."""
    if not path.is_file():
        return None
    try:
        questions = load_questions(path)
    except (OSError, UnicodeDecodeError, ValidationError, ValueError) as e:
        log.warning("what-if: %s not used: %s", path, e)
        return None
    if not questions:
        return None
    log.info("what-if: %d evaluation questions in %s", len(questions), path)
    return EvalSamples(agent, questions, policy)
