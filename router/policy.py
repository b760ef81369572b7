"""The handoff policy: thresholds and rules that ``decide()`` applies.

A threshold is the minimum confidence for an automatic answer; 1.0 means the AI never
answers on its own in that queue.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from router.subjects import queue_token

Threshold = Annotated[float, Field(ge=0.0, le=1.0)]

DEFAULT_QUEUE = "general"


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 0
    default_threshold: Threshold = 0.5
    queue_thresholds: dict[str, Threshold] = Field(default_factory=dict)
    # Department (e.g. a PTV service class "P5") → queue that handles it.
    department_queues: dict[str, str] = Field(default_factory=dict)
    default_queue: str = DEFAULT_QUEUE
    # A department guessed with less confidence than this is not trusted for routing: the
    # ticket goes to the default queue (a message with no topic, e.g. "I want a person").
    routing_floor: Threshold = 0.25
    # Queues where people always answer (the AI only drafts).
    always_handoff_queues: frozenset[str] = frozenset()
    # After this many automatic answers in one conversation a person takes over.
    max_ai_turns: Annotated[int, Field(ge=1)] = 8
    # Ask one clarifying question before handing off a very short, unclear message.
    clarify_short_messages: bool = True

    @model_validator(mode="after")
    def _queues_are_slugs(self) -> Self:
        for q in (
            self.default_queue,
            *self.queue_thresholds,
            *self.department_queues.values(),
            *self.always_handoff_queues,
        ):
            queue_token(q)
        return self

    def queue_for(self, department: str | None) -> str:
        if department is None:
            return self.default_queue
        return self.department_queues.get(department, self.default_queue)

    def ticket_queue_for(self, department: str | None, confidence: float) -> str:
        """Where a person picks the case up: the department's queue only when trusted."""
        if confidence < self.routing_floor:
            return self.default_queue
        return self.queue_for(department)

    def threshold_for(self, queue: str) -> float:
        return self.queue_thresholds.get(queue, self.default_threshold)
