"""The router's work on a batch of resident messages: store, triage, decide, record.

Messages of one conversation are handled in order (a handoff in the first changes what the
second gets); different conversations run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from agents.base import Assessment, TriageAgent, TriageRequest
from router.compose import compose, new_case_number, reply_language
from router.decide import Action, AgentFailure, ClarifyKind, Owner, Situation, decide
from router.events import Event, MessageReceived, new_id
from router.metrics import Metrics
from router.policy import Policy
from router.store import ConversationState, Intake, Outcome, RouterStore, after

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self,
        store: RouterStore,
        agent: TriageAgent,
        policy: Callable[[], Policy],
        metrics: Metrics,
        *,
        agent_timeout: float = 10.0,
        case_prefix: str = "NV",
    ) -> None:
        self.store = store
        self.agent = agent
        self.policy = policy
        self.metrics = metrics
        self.agent_timeout = agent_timeout
        self.case_prefix = case_prefix

    async def process(self, events: Sequence[MessageReceived]) -> list[Event]:
        """Handle a batch; returns the events to publish after the batch is committed."""
        intakes = await self.store.intake(events)
        fresh: dict[str, Intake] = {}
        redelivered: list[str] = []
        for i in intakes:
            if i.decided:
                redelivered.append(i.message_id)
            else:
                # The same provider message twice in one batch is handled once.
                fresh.setdefault(i.message_id, i)
        by_conversation: dict[str, list[Intake]] = {}
        for i in fresh.values():
            by_conversation.setdefault(i.conversation.id, []).append(i)
        policy = self.policy()
        groups = await asyncio.gather(
            *(self._conversation(items, policy) for items in by_conversation.values())
        )
        outcomes = [o for group in groups for o in group]
        out = await self.store.record(outcomes)
        self._observe(outcomes)
        # A batch redelivered after a crash: its replies are stored; publish them again
        # (JetStream drops the duplicates by message id).
        out.extend(await self.store.replies_to(redelivered))
        return out

    async def _conversation(self, items: list[Intake], policy: Policy) -> list[Outcome]:
        state = items[0].conversation
        outcomes = []
        for intake in items:
            outcome = await self._one(intake, state, policy)
            state = outcome.conversation_after
            outcomes.append(outcome)
        return outcomes

    async def _triage(
        self, intake: Intake, state: ConversationState
    ) -> tuple[Assessment | None, AgentFailure | None]:
        request = TriageRequest(
            text=intake.event.text,
            channel=intake.event.channel.value,
            conversation_id=state.id,
            language_hint=state.language,
        )
        try:
            return await asyncio.wait_for(self.agent.triage(request), self.agent_timeout), None
        except TimeoutError:
            log.warning("triage timed out for message %s", intake.message_id)
            return None, AgentFailure.TIMEOUT
        except Exception:
            # Any AI failure sends the message to people; it is never lost or dropped.
            log.exception("triage failed for message %s", intake.message_id)
            return None, AgentFailure.ERROR

    async def _one(self, intake: Intake, state: ConversationState, policy: Policy) -> Outcome:
        started = time.perf_counter()
        assessment: Assessment | None = None
        failure: AgentFailure | None = None
        if state.owner is Owner.AI:
            assessment, failure = await self._triage(intake, state)
        latency_ms = (time.perf_counter() - started) * 1000
        decision = decide(
            Situation(
                assessment=assessment,
                failure=failure,
                owner=state.owner,
                ai_turns=state.ai_turns,
                clarifications=state.clarifications,
                message_words=len(intake.event.text.split()),
            ),
            policy,
        )
        language = reply_language(assessment, state.language)
        case_number = (
            new_case_number(self.case_prefix) if decision.action is Action.HANDOFF else None
        )
        outgoing = compose(
            decision,
            assessment,
            language=language,
            disclosed=state.disclosed,
            case_number=case_number,
        )
        match decision.action:
            case Action.ANSWER:
                state_after = after(
                    state,
                    ai_turns=state.ai_turns + 1,
                    clarifications=0,
                    disclosed=True,
                    language=language,
                )
            case Action.CLARIFY:
                more = 1 if decision.clarify is ClarifyKind.MORE_DETAIL else 0
                state_after = after(
                    state,
                    clarifications=state.clarifications + more,
                    disclosed=True,
                    language=language,
                )
            case Action.HANDOFF:
                state_after = after(state, owner=Owner.HUMAN, clarifications=0, language=language)
            case Action.HOLD:
                state_after = state
        return Outcome(
            intake=intake,
            decision=decision,
            assessment=assessment,
            failure=failure,
            agent=self.agent.name if state.owner is Owner.AI else None,
            latency_ms=latency_ms,
            language=language,
            conversation_after=state_after,
            outgoing=outgoing,
            outgoing_id=new_id() if outgoing else None,
            case_number=case_number,
        )

    def _observe(self, outcomes: Sequence[Outcome]) -> None:
        now = time.time()
        for o in outcomes:
            self.metrics.decided(o.decision, o.intake.event.channel.value)
            if o.outgoing is not None:
                self.metrics.reply_latency.observe(
                    max(0.0, now - o.intake.event.occurred_at.timestamp())
                )
            self.metrics.agent_latency.observe(o.latency_ms / 1000)
