"""The triage agent interface: what any agent (offline, LLM) takes and gives back.

The router calls ``TriageAgent.triage`` and feeds the ``Assessment`` to the pure
``router.decide.decide``; the agent never decides on its own whether its answer is sent.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from router.events import SourceRef

ReplyLanguage = Literal["fi", "sv", "en"]
SUPPORTED_LANGUAGES: tuple[ReplyLanguage, ...] = ("fi", "sv", "en")


class Intent(StrEnum):
    QUESTION = "question"
    GREETING = "greeting"
    THANKS = "thanks"
    OTHER = "other"


class Document(BaseModel):
    """A knowledge-base document with all its language versions (the docs JSONL format)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    url: str | None = None
    departments: tuple[str, ...] = ()
    title: dict[str, str]
    text: dict[str, str]
    source: str = ""

    def title_in(self, lang: str) -> str:
        return self.title.get(lang) or next(iter(self.title.values()), self.id)


class TriageRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    channel: str
    conversation_id: str | None = None
    # Earlier resident messages in this conversation, oldest first (context for short follow-ups).
    history: tuple[str, ...] = ()
    # The language the conversation has used so far, if known.
    language_hint: str | None = None


class AgentUsage(BaseModel):
    """What one assessment cost an external model, for the audit record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    prompt_version: str
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    # In the currency of the configured prices (NEUVONTA_LLM_PRICE_*); None: no prices set.
    cost: float | None = Field(None, ge=0)
    latency_ms: float | None = Field(None, ge=0)
    # Set when this assessment did not come from the model: "circuit_open", "error: …".
    fallback: str | None = None


class Assessment(BaseModel):
    """What the agent found. Everything ``decide()`` needs; no decision in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: str = Field(description="ISO 639-1 code of the message, 'und' when unknown")
    reply_language: ReplyLanguage
    intent: Intent = Intent.QUESTION
    answer: str | None = Field(None, description="Grounded draft answer, None when none")
    answer_language: str | None = Field(
        None, description="Language of the source text quoted in the answer"
    )
    sources: tuple[SourceRef, ...] = ()
    confidence: float = Field(ge=0.0, le=1.0)
    department: str | None = None
    urgent: bool = False
    personal_case: bool = False
    wants_human: bool = False
    reason: str = ""
    ranked_doc_ids: tuple[str, ...] = Field(
        (), description="Retrieval ranking, best first (for evaluation and audit)"
    )
    scores: dict[str, float] = Field(default_factory=dict)
    # An LLM agent's model, prompt version, tokens, cost; None for agents without a model.
    usage: AgentUsage | None = None


class TriageAgent(Protocol):
    """Anything that can assess a resident's message."""

    @property
    def name(self) -> str: ...

    async def triage(self, request: TriageRequest) -> Assessment: ...
