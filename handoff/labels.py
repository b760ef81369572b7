""" "AI was right / wrong" labels on tickets: what people say about the AI's department and
answer. The latest label of a ticket is the one that counts (anyone may replace it); every
label given stays in ``ai_label_change``. The what-if simulator (``handoff.whatif``) reads
them as ground truth for the AI's drafts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from router.events import utcnow
from router.tables import AiLabelChangeRow, AiLabelRow

LABEL = AiLabelRow.__table__  # type: ignore[attr-defined]
LABEL_CHANGE = AiLabelChangeRow.__table__  # type: ignore[attr-defined]


class LabelInput(BaseModel):
    # Strict: "yes" or 1 is a mistake to refuse, not a true to guess.
    model_config = ConfigDict(extra="forbid", strict=True)

    department_correct: bool | None = Field(
        description="Did the AI pick the right department (null: not judged)"
    )
    answer_correct: bool | None = Field(
        description="Was the AI's answer or draft right (null: not judged)"
    )


class AiLabel(BaseModel):
    model_config = ConfigDict(frozen=True)

    ticket_id: int
    department_correct: bool | None
    answer_correct: bool | None
    labelled_by: str
    labelled_at: datetime


def _label(row: Any) -> AiLabel:
    return AiLabel.model_validate(dict(row._mapping))


class LabelStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def save(self, ticket_id: int, given: LabelInput, by: str) -> AiLabel:
        """Replace the ticket's label and record it in the history, in one transaction.

        The caller checks the ticket exists and the person may see it.
        """
        values: dict[str, Any] = {
            "department_correct": given.department_correct,
            "answer_correct": given.answer_correct,
            "labelled_by": by,
            "labelled_at": utcnow(),
        }
        for attempt in (1, 2):
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(LABEL_CHANGE.insert().values(ticket_id=ticket_id, **values))
                    await _upsert(conn, ticket_id, values)
                break
            except IntegrityError:
                # Two first labels at once: the other one's row exists now; update it.
                if attempt == 2:
                    raise
        return AiLabel(ticket_id=ticket_id, **values)

    async def get(self, ticket_id: int) -> AiLabel | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(LABEL).where(LABEL.c.ticket_id == ticket_id))
            ).one_or_none()
        return None if row is None else _label(row)

    async def history(self, ticket_id: int) -> list[AiLabel]:
        """Every label given to the ticket, oldest first."""
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(
                    LABEL_CHANGE.c.ticket_id,
                    LABEL_CHANGE.c.department_correct,
                    LABEL_CHANGE.c.answer_correct,
                    LABEL_CHANGE.c.labelled_by,
                    LABEL_CHANGE.c.labelled_at,
                )
                .where(LABEL_CHANGE.c.ticket_id == ticket_id)
                .order_by(LABEL_CHANGE.c.id)
            )
            return [_label(r) for r in found]


async def _upsert(conn: AsyncConnection, ticket_id: int, values: Mapping[str, Any]) -> None:
    done = await conn.execute(update(LABEL).where(LABEL.c.ticket_id == ticket_id).values(values))
    if done.rowcount == 0:
        await conn.execute(LABEL.insert().values(ticket_id=ticket_id, **values))
