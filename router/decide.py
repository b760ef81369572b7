"""The pure decision: answer, ask to clarify, hand off to a person, or hold for a person.

``decide()`` does no I/O and reads no clock; everything it needs is in its inputs, so it is
tested with tables and properties and replayed by ``neuvonta eval`` and the what-if tools.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from agents.base import Assessment, Intent
from router.policy import Policy


class Owner(StrEnum):
    AI = "ai"
    HUMAN = "human"


class AgentFailure(StrEnum):
    ERROR = "error"
    TIMEOUT = "timeout"


class Action(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    HANDOFF = "handoff"
    # A person owns the conversation: store, tell the person, say nothing automatically.
    HOLD = "hold"


class HandoffReason(StrEnum):
    ASKED_FOR_HUMAN = "asked_for_human"
    URGENT = "urgent"
    PERSONAL_CASE = "personal_case"
    LOW_CONFIDENCE = "low_confidence"
    NO_ANSWER = "no_answer"
    AI_ERROR = "ai_error"
    AI_TIMEOUT = "ai_timeout"
    MAX_TURNS = "max_turns"
    QUEUE_RULE = "queue_rule"


class ClarifyKind(StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    MORE_DETAIL = "more_detail"


class Situation(BaseModel):
    """Everything known when a resident's message is decided on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    assessment: Assessment | None
    failure: AgentFailure | None = None
    owner: Owner = Owner.AI
    # Automatic answers already given in this conversation.
    ai_turns: int = Field(0, ge=0)
    # Clarifying questions asked since the last answer or handoff.
    clarifications: int = Field(0, ge=0)
    # Words in the resident's message (short messages get a clarifying question first).
    message_words: int = Field(0, ge=0)
    # While a person owns the conversation the AI does not triage; the urgency rules still
    # read every message, so that danger is never left waiting for a person.
    screened_urgent: bool = False


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    queue: str
    threshold: float
    policy_version: int
    reason: HandoffReason | None = None
    clarify: ClarifyKind | None = None
    urgent: bool = False


SHORT_MESSAGE_WORDS = 3


def decide(situation: Situation, policy: Policy) -> Decision:
    a = situation.assessment
    # Threshold and queue rules are the topic's; the ticket goes where the topic is trusted.
    topic_queue = policy.queue_for(a.department if a else None)
    threshold = policy.threshold_for(topic_queue)
    queue = policy.ticket_queue_for(a.department, a.confidence) if a else policy.default_queue
    urgent = bool(a and a.urgent) or situation.screened_urgent

    def out(
        action: Action,
        reason: HandoffReason | None = None,
        clarify: ClarifyKind | None = None,
    ) -> Decision:
        return Decision(
            action=action,
            queue=queue,
            threshold=threshold,
            policy_version=policy.version,
            reason=reason,
            clarify=clarify,
            urgent=urgent,
        )

    if situation.owner is Owner.HUMAN:
        return out(Action.HOLD)
    if situation.failure is not None or a is None:
        failure = situation.failure or AgentFailure.ERROR
        reason = (
            HandoffReason.AI_TIMEOUT if failure is AgentFailure.TIMEOUT else HandoffReason.AI_ERROR
        )
        return out(Action.HANDOFF, reason)
    # Safety and the resident's own wishes come before any score.
    if a.urgent:
        return out(Action.HANDOFF, HandoffReason.URGENT)
    if a.wants_human:
        return out(Action.HANDOFF, HandoffReason.ASKED_FOR_HUMAN)
    if a.personal_case:
        return out(Action.HANDOFF, HandoffReason.PERSONAL_CASE)
    if a.answer is None and a.intent is Intent.GREETING:
        return out(Action.CLARIFY, clarify=ClarifyKind.GREETING)
    if a.answer is None and a.intent is Intent.THANKS:
        return out(Action.CLARIFY, clarify=ClarifyKind.THANKS)
    if topic_queue in policy.always_handoff_queues:
        return out(Action.HANDOFF, HandoffReason.QUEUE_RULE)
    if situation.ai_turns >= policy.max_ai_turns:
        return out(Action.HANDOFF, HandoffReason.MAX_TURNS)

    answerable = a.answer is not None and len(a.sources) > 0
    # A threshold of 1.0 means people answer: not even a fully confident draft goes out.
    if answerable and a.confidence >= threshold and threshold < 1.0:
        return out(Action.ANSWER)
    if (
        policy.clarify_short_messages
        and situation.clarifications == 0
        and 0 < situation.message_words <= SHORT_MESSAGE_WORDS
    ):
        return out(Action.CLARIFY, clarify=ClarifyKind.MORE_DETAIL)
    return out(
        Action.HANDOFF, HandoffReason.LOW_CONFIDENCE if answerable else HandoffReason.NO_ANSWER
    )
