"""Two deciders on one conversation at once, on real databases (SQLite and PostgreSQL).

Two workers each take one message of the same conversation (a queue group gives no
affinity), or a person resolves the ticket while a worker decides. Whoever commits second
decided on a state that no longer holds: it must decide again, never write over the first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.base import Assessment, TriageRequest
from handoff.queues import default_policy
from handoff.tickets import TicketService
from router import phrases
from router.db import create_engine, create_schema
from router.events import Address, Channel, Event, MessageReceived, ReplyRequested
from router.metrics import Metrics
from router.pipeline import Pipeline
from router.policy import Policy
from router.store import Intake, RouterStore
from tests.integration.harness import (
    ScriptedAgent,
    answering,
    eventually,
    library_answer,
    make_settings,
    rows,
    services,
)

NUMBER = "+358401234567"


def sms(text: str, provider_id: str) -> MessageReceived:
    return MessageReceived(
        channel=Channel.SMS,
        provider_message_id=provider_id,
        sender=Address(channel=Channel.SMS, value=NUMBER),
        text=text,
    )


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on one database, as two worker processes have."""
    first, second = create_engine(database_url), create_engine(database_url)
    await create_schema(first)
    yield first, second
    await first.dispose()
    await second.dispose()


def pipeline(engine: AsyncEngine, agent: ScriptedAgent) -> Pipeline:
    policy: Policy = default_policy(0.5)
    return Pipeline(RouterStore(engine), agent, lambda: policy, Metrics())


class Settled:
    """A worker's settle callback: what it would publish and ack."""

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.events: list[Event] = []

    async def __call__(self, positions: list[int], events: list[Event]) -> None:
        self.positions += positions
        self.events += events


def slow_worker_b(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> tuple[asyncio.Event, ScriptedAgent, Pipeline, Pipeline]:
    """Workers A and B on their own engines; B's model answers once the gate opens."""
    gate = asyncio.Event()

    async def slow_answer(request: TriageRequest) -> Assessment:
        await gate.wait()
        return library_answer(request)

    slow = ScriptedAgent(slow_answer)
    return gate, slow, pipeline(engines[0], answering()), pipeline(engines[1], slow)


async def b_decides_while_a_commits(
    engines: tuple[AsyncEngine, AsyncEngine], b_text: str, a_text: str
) -> tuple[ScriptedAgent, Settled]:
    """Worker B takes ``b_text`` and its model is slow; meanwhile worker A takes the
    resident's next message, ``a_text``, and commits first. B's model and settle calls."""
    gate, slow, worker_a, worker_b = slow_worker_b(engines)
    settled_a, settled_b = Settled(), Settled()
    b = asyncio.create_task(worker_b.process([sms(b_text, "SM1")], settled_b))
    await eventually(lambda: slow.calls == 1, what="worker B's model asked")
    await worker_a.process([sms(a_text, "SM2")], settled_a)
    assert settled_a.positions == [0]
    gate.set()
    await asyncio.wait_for(b, 10)
    return slow, settled_b


async def test_an_answer_decided_before_another_workers_handoff_is_decided_again(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    # B's model is slow on "when is the library open"; A hands the next message off.
    _, settled_b = await b_decides_while_a_commits(
        engines, "Milloin kirjasto on auki?", "Haluan puhua ihmisen kanssa"
    )

    # B decided on "the AI owns this" and lost the race: it decided again, on the case a
    # person now owns, and held the message on the ticket instead of answering.
    assert settled_b.positions == [0]
    engine = engines[0]
    (conversation,) = await rows(engine, "conversation")
    assert conversation["owner"] == "human"
    (ticket,) = await rows(engine, "ticket")
    assert ticket["status"] == "open" and ticket["reason"] == "asked_for_human"
    first = (await rows(engine, "message", dedup_key="sms:SM1"))[0]
    (decision,) = await rows(engine, "decision", message_id=first["id"])
    assert decision["action"] == "hold" and decision["ticket_id"] == ticket["id"]
    assert await rows(engine, "message", role="ai") == []
    # The second worker's events: the message added to the open case, no AI reply.
    assert [type(e).__name__ for e in settled_b.events] == ["HandoffRequested"]


async def test_two_answers_at_once_both_count_and_only_the_first_says_it_is_an_ai(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    slow, settled_b = await b_decides_while_a_commits(
        engines, "Milloin kirjasto on auki?", "Missä kirjasto on?"
    )

    # B's answer was decided on "nothing said yet": decided again, it counts as the second
    # AI turn and does not tell the resident a second time that an AI is answering; its
    # model was asked once all the same.
    assert settled_b.positions == [0] and slow.calls == 1
    engine = engines[0]
    (conversation,) = await rows(engine, "conversation")
    assert conversation["owner"] == "ai" and conversation["ai_turns"] == 2
    answers = await rows(engine, "message", role="ai")
    assert len(answers) == 2
    disclosure = phrases.disclosure("fi")
    assert sorted(disclosure in m["text"] for m in answers) == [False, True]


async def test_a_hold_decided_while_a_person_resolves_the_case_is_decided_again(
    engines: tuple[AsyncEngine, AsyncEngine], tmp_path: Path, nats_url: str, database_url: str
) -> None:
    engine = engines[0]
    worker = pipeline(engine, answering())
    await worker.process([sms("Haluan puhua ihmisen kanssa", "SM1")], Settled())
    (ticket,) = await rows(engine, "ticket")

    async with services(make_settings(tmp_path, nats_url, database_url)) as svc:
        tickets = TicketService(svc.engine, svc.publisher)
        # The resident writes again just as the person resolves the case: the worker reads
        # "a person owns this", and the resolve lands before the worker writes.
        store = worker.store
        read = store.intake

        async def read_then_resolve(events: Sequence[MessageReceived]) -> list[Intake]:
            intakes = await read(events)
            if not await rows(engine, "ticket", status="resolved"):
                await tickets.resolve(ticket["id"], "agent1")
            return intakes

        store.intake = read_then_resolve  # type: ignore[method-assign]
        settled = Settled()
        await worker.process([sms("Vielä yksi kysymys laskustani", "SM2")], settled)

    # Decided again on the new state: the message reopens the just-resolved case, and the
    # resident is told so with its case number (a hold on the old state would tell nothing).
    assert settled.positions == [0]
    (reopened,) = await rows(engine, "ticket")
    assert reopened["status"] == "open"
    (conversation,) = await rows(engine, "conversation")
    assert conversation["owner"] == "human"
    replies = [e for e in settled.events if isinstance(e, ReplyRequested)]
    assert len(replies) == 1 and ticket["case_number"] in replies[0].text


async def test_of_two_conversations_committed_together_only_the_changed_one_is_decided_again(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    # Worker B's slow model holds two residents' messages, which then commit together (one
    # statement for both conversations); meanwhile worker A hands the first resident off.
    gate, slow, worker_a, worker_b = slow_worker_b(engines)
    other = MessageReceived(
        channel=Channel.SMS,
        provider_message_id="SM9",
        sender=Address(channel=Channel.SMS, value="+358409999999"),
        text="Missä kirjasto on?",
    )
    settled_b = Settled()
    b = asyncio.create_task(
        worker_b.process([sms("Milloin kirjasto on auki?", "SM1"), other], settled_b)
    )
    await eventually(lambda: slow.calls == 2, what="worker B's model asked twice")
    await worker_a.process([sms("Haluan puhua ihmisen kanssa", "SM2")], Settled())
    gate.set()
    await asyncio.wait_for(b, 10)

    assert sorted(settled_b.positions) == [0, 1] and slow.calls == 2
    engine = engines[0]
    (ticket,) = await rows(engine, "ticket")
    first = (await rows(engine, "message", dedup_key="sms:SM1"))[0]
    (held,) = await rows(engine, "decision", message_id=first["id"])
    assert held["action"] == "hold" and held["ticket_id"] == ticket["id"]
    # The other resident's answer was written once, as decided the first time.
    (answer,) = await rows(engine, "message", role="ai")
    assert answer["conversation_id"] != first["conversation_id"]
    (theirs,) = await rows(engine, "conversation", id=answer["conversation_id"])
    assert theirs["owner"] == "ai" and theirs["ai_turns"] == 1
