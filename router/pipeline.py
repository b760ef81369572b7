"""The router's work on a batch of resident messages: store, triage, decide, record.

Messages of one conversation are handled in order (a handoff in the first changes what the
second gets); different conversations run concurrently, and each is settled (recorded,
published, acknowledged) as soon as it is done: a quick answer never waits for a slow one.
Conversations that finish together share one transaction (group commit), so a fast agent
still writes in big batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agents.base import Assessment, TriageAgent, TriageRequest
from agents.rules import is_urgent
from router import phrases
from router.compose import Outgoing, compose, new_case_number, reply_language
from router.decide import Action, AgentFailure, ClarifyKind, Owner, Situation, decide
from router.events import Event, MessageReceived, Role, new_id, utcnow
from router.metrics import Metrics
from router.phrases import Availability
from router.policy import Policy
from router.store import ConversationState, Intake, Outcome, Recorded, RouterStore, after

log = logging.getLogger(__name__)

# Called once per group of settled batch positions with the events to publish for them.
Settle = Callable[[list[int], list[Event]], Awaitable[None]]
# When a person of a queue answers, as of a moment (``handoff.hours``); None: unknown.
QueueAvailability = Callable[[str, datetime], Availability | None]
# Triage by message id: the assessment or failure, and the milliseconds it took.
Triaged = dict[str, tuple[Assessment | None, AgentFailure | None, float]]
# Times one conversation is decided again after someone else changed it meanwhile.
STALE_RETRIES = 5


class ConversationChanged(Exception):
    """Someone else decided on the conversation since intake; nothing of it was written."""


@dataclass(slots=True)
class _Waiting:
    outcomes: list[Outcome]
    positions: list[int]
    settle: Settle
    done: asyncio.Future[None]


class GroupCommit:
    """Conversations that finish together are recorded and settled together.

    The first caller commits at once; callers arriving meanwhile wait and then go together
    in one transaction, one publish and one round of acks (per ``settle``), which is what a
    fast agent's whole batch costs. A slow conversation only delays itself.
    """

    def __init__(self, record: Callable[[Sequence[Outcome]], Awaitable[Recorded]]) -> None:
        self._record = record
        self._waiting: list[_Waiting] = []
        self._lock = asyncio.Lock()

    async def __call__(self, outcomes: list[Outcome], positions: list[int], settle: Settle) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(outcomes, positions, settle, done))
        # Let the conversations finishing in this same turn of the loop join the commit.
        await asyncio.sleep(0)
        async with self._lock:
            if not done.done():
                await self._commit_waiting()
        await done

    async def _commit_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            recorded = await self._record([o for w in waiting for o in w.outcomes])
        except asyncio.CancelledError:
            for w in waiting:
                w.done.cancel()
            raise
        except Exception as e:
            for w in waiting:
                w.done.set_exception(e)
            return
        events = recorded.events
        by_settle: dict[Settle, list[_Waiting]] = {}
        for w in waiting:
            stale = recorded.stale.intersection(o.intake.conversation.id for o in w.outcomes)
            if stale:
                w.done.set_exception(ConversationChanged(*stale))
            else:
                by_settle.setdefault(w.settle, []).append(w)
        for settle, group in by_settle.items():
            mine = {o.intake.conversation.id for w in group for o in w.outcomes}
            try:
                await settle(
                    [p for w in group for p in w.positions],
                    [e for e in events if e.conversation_id in mine],
                )
            except Exception as e:
                for w in group:
                    w.done.set_exception(e)
            else:
                for w in group:
                    w.done.set_result(None)


async def all_finished(tasks: Sequence[Awaitable[None]]) -> None:
    """Run ``tasks`` together; the first failure is raised once every one has finished."""
    failures = [r for r in await asyncio.gather(*tasks, return_exceptions=True) if r is not None]
    if failures:
        raise failures[0]


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
        availability: QueueAvailability | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.availability = availability
        self.clock = clock
        self.agent = agent
        self.policy = policy
        self.metrics = metrics
        self.agent_timeout = agent_timeout
        self.case_prefix = case_prefix
        self.record = GroupCommit(store.record)
        # Message id → done, for the messages the batches in hand are deciding.
        self._in_hand: dict[str, asyncio.Future[None]] = {}

    async def process(self, events: Sequence[MessageReceived], settle: Settle) -> None:
        """Handle a batch; ``settle`` gets each group of positions once it is committed.

        Raises the first failure after every conversation has finished; positions not
        settled by then are the caller's to retry.
        """
        intakes = await self.store.intake(events)
        fresh: dict[str, tuple[Intake, list[int]]] = {}
        redelivered: list[int] = []
        for position, i in enumerate(intakes):
            if i.decided:
                redelivered.append(position)
            else:
                # The same provider message twice in one batch is handled once.
                fresh.setdefault(i.message_id, (i, []))[1].append(position)
        # Delivered again while another batch of this worker decides it: that batch's
        # outcome is this one's too (the agent is not asked twice).
        elsewhere = [fresh.pop(m) for m in list(fresh) if m in self._in_hand]
        waits = [self._in_hand[i.message_id] for i, _ in elsewhere]
        loop = asyncio.get_running_loop()
        mine = {m: loop.create_future() for m in fresh}
        self._in_hand.update(mine)
        policy = self.policy()
        tasks = self._conversations(list(fresh.values()), policy, settle)
        if redelivered:
            tasks.append(self._republish([intakes[p] for p in redelivered], redelivered, settle))
        if elsewhere:
            tasks.append(self._after(waits, elsewhere, policy, settle))
        try:
            await all_finished(tasks)
        finally:
            for m, done in mine.items():
                done.set_result(None)
                del self._in_hand[m]

    def _conversations(
        self, items: list[tuple[Intake, list[int]]], policy: Policy, settle: Settle
    ) -> list[Coroutine[Any, Any, None]]:
        """One task a conversation: its messages are decided in order."""
        by_conversation: dict[str, list[tuple[Intake, list[int]]]] = {}
        for item in items:
            by_conversation.setdefault(item[0].conversation.id, []).append(item)
        return [self._conversation(its, policy, settle) for its in by_conversation.values()]

    async def _after(
        self,
        waits: list[asyncio.Future[None]],
        items: list[tuple[Intake, list[int]]],
        policy: Policy,
        settle: Settle,
    ) -> None:
        await asyncio.wait(waits)
        # Settled with what the other batch stored; decided here only if it failed.
        await all_finished(self._conversations(await self._reread(items, settle), policy, settle))

    async def _republish(self, intakes: list[Intake], positions: list[int], settle: Settle) -> None:
        # Redelivered after a crash: the replies are stored; publish them again (JetStream
        # drops the duplicates by message id).
        await settle(positions, list(await self.store.replies_to([i.message_id for i in intakes])))

    async def _conversation(
        self, items: list[tuple[Intake, list[int]]], policy: Policy, settle: Settle
    ) -> None:
        triaged: Triaged = {}
        for attempt in range(STALE_RETRIES + 1):
            state = items[0][0].conversation
            outcomes = []
            for intake, _ in items:
                outcome = await self._one(intake, state, policy, triaged)
                state = outcome.conversation_after
                outcomes.append(outcome)
            try:
                await self.record(outcomes, [p for _, ps in items for p in ps], settle)
            except ConversationChanged:
                if attempt == STALE_RETRIES:
                    raise
                log.info("conversation %s changed meanwhile; deciding again", state.id)
                items = await self._reread(items, settle)
                if not items:
                    return
            else:
                self._observe(outcomes)
                return

    async def _reread(
        self, items: list[tuple[Intake, list[int]]], settle: Settle
    ) -> list[tuple[Intake, list[int]]]:
        """The items with their conversation as it is now; those another worker has
        decided meanwhile are settled with the replies it stored."""
        intakes = await self.store.intake([intake.event for intake, _ in items])
        done = [(i, ps) for i, (_, ps) in zip(intakes, items, strict=True) if i.decided]
        if done:
            await self._republish([i for i, _ in done], [p for _, ps in done for p in ps], settle)
        return [(i, ps) for i, (_, ps) in zip(intakes, items, strict=True) if not i.decided]

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
            # asyncio.timeout, not wait_for: no extra task a message.
            async with asyncio.timeout(self.agent_timeout):
                return await self.agent.triage(request), None
        except TimeoutError:
            log.warning("triage timed out for message %s", intake.message_id)
            return None, AgentFailure.TIMEOUT
        except Exception:
            # Any AI failure sends the message to people; it is never lost or dropped.
            log.exception("triage failed for message %s", intake.message_id)
            return None, AgentFailure.ERROR

    def _answered(self, queue: str) -> Availability | None:
        """When a person of ``queue`` answers, as of now (None: not known)."""
        return None if self.availability is None else self.availability(queue, self.clock())

    async def _one(
        self, intake: Intake, state: ConversationState, policy: Policy, triaged: Triaged
    ) -> Outcome:
        started = time.perf_counter()
        # A message soon after the case was resolved reopens it: back to the person.
        ticket = intake.open_ticket
        resolved = ticket is not None and ticket.resolved
        reopened = ticket if state.owner is Owner.AI and resolved else None
        if reopened is not None:
            state = after(state, owner=Owner.HUMAN)
        assessment: Assessment | None = None
        failure: AgentFailure | None = None
        screened_urgent = False
        if state.owner is Owner.AI:
            # Decided again after a conflict, a message keeps its triage: the model is not
            # asked (and paid) twice. (The language hint may have moved on meanwhile, from
            # a message written at the same time: the first triage is as good.)
            if intake.message_id not in triaged:
                triage = await self._triage(intake, state)
                triaged[intake.message_id] = (*triage, (time.perf_counter() - started) * 1000)
            assessment, failure, latency_ms = triaged[intake.message_id]
        else:
            screened_urgent = is_urgent(intake.event.text)
            latency_ms = (time.perf_counter() - started) * 1000
        decision = decide(
            Situation(
                assessment=assessment,
                failure=failure,
                owner=state.owner,
                ai_turns=state.ai_turns,
                clarifications=state.clarifications,
                message_words=len(intake.event.text.split()),
                screened_urgent=screened_urgent,
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
            availability=None if case_number is None else self._answered(decision.queue),
        )
        if reopened is not None:
            outgoing = Outgoing(
                Role.SYSTEM,
                phrases.reopened_ack(
                    language,
                    reopened.case_number,
                    urgent=decision.urgent,
                    availability=self._answered(reopened.queue),
                ),
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
