"""Running the real services in a test: NATS server, database, router worker."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from nats.aio.msg import Msg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.base import Assessment, TriageAgent, TriageRequest
from router.app import RouterWorker, Services, initial_policy
from router.events import Event, SourceRef
from router.settings import Settings
from router.tables import (
    ConversationRow,
    DeadLetterRow,
    DecisionRow,
    MessageRow,
    TicketRow,
)

TABLES = {
    "conversation": ConversationRow.__table__,  # type: ignore[attr-defined]
    "message": MessageRow.__table__,  # type: ignore[attr-defined]
    "decision": DecisionRow.__table__,  # type: ignore[attr-defined]
    "ticket": TicketRow.__table__,  # type: ignore[attr-defined]
    "dead_letter": DeadLetterRow.__table__,  # type: ignore[attr-defined]
}

E = TypeVar("E", bound=Event)

LIBRARY = SourceRef(doc_id="lib", title="Kirjastopalvelut", url="https://kunta.example/kirjasto")


def library_answer(request: TriageRequest) -> Assessment:
    return Assessment(
        language="fi",
        reply_language="fi",
        answer="Kirjasto on auki arkisin.",
        answer_language="fi",
        sources=(LIBRARY,),
        confidence=0.9,
        department="P25",
        wants_human="ihmisen" in request.text,
    )


class ScriptedAgent:
    """An AI stand-in whose behaviour a test chooses (answer, fail, hang)."""

    name = "scripted"

    def __init__(self, behaviour: Callable[[TriageRequest], Awaitable[Assessment]]) -> None:
        self.behaviour = behaviour
        self.calls = 0

    async def triage(self, request: TriageRequest) -> Assessment:
        self.calls += 1
        return await self.behaviour(request)


def answering() -> ScriptedAgent:
    async def behave(request: TriageRequest) -> Assessment:
        return library_answer(request)

    return ScriptedAgent(behave)


def make_settings(tmp_path: Path, nats_url: str, database_url: str, **kw: Any) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": tmp_path / "var",
            "nats_url": nats_url,
            "database_url": database_url,
            "ack_wait": 2.0,
            "agent_timeout": 2.0,
            "kb_seed": [],
            **kw,
        }
    )


@contextlib.asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[Services]:
    svc = Services.create(settings, settings.nats_url or "")
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


class WorkerRun:
    def __init__(self, svc: Services, agent: TriageAgent) -> None:
        self.worker = RouterWorker(svc, agent, initial_policy(svc.settings, svc.queues))
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.worker.run())
        await asyncio.wait_for(self.worker.ready.wait(), 10)

    async def stop(self) -> None:
        self.worker.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)

    async def crash(self) -> None:
        """Die mid-work: nothing in hand is acked or finished."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@contextlib.asynccontextmanager
async def worker(svc: Services, agent: TriageAgent) -> AsyncIterator[WorkerRun]:
    run = WorkerRun(svc, agent)
    await run.start()
    try:
        yield run
    finally:
        if run.task is not None and not run.task.done():
            await run.stop()


def _engine(db: Services | AsyncEngine) -> AsyncEngine:
    return db if isinstance(db, AsyncEngine) else db.engine


async def count(db: Services | AsyncEngine, table: str, **where: Any) -> int:
    t = TABLES[table]
    q = select(func.count()).select_from(t)
    for column, value in where.items():
        q = q.where(t.c[column] == value)
    async with _engine(db).connect() as conn:
        return int((await conn.execute(q)).scalar_one())


async def rows(db: Services | AsyncEngine, table: str, **where: Any) -> list[dict[str, Any]]:
    t = TABLES[table]
    q = select(t)
    for column, value in where.items():
        q = q.where(t.c[column] == value)
    async with _engine(db).connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(q)]


async def eventually(
    check: Callable[[], Awaitable[object] | object],
    timeout: float = 10.0,
    what: str = "condition",
) -> None:
    """Until ``check()`` (a plain or an async function) gives something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def collect(svc: Services, subject: str, model: type[E]) -> list[E]:
    """Every event published on ``subject`` from now on (core NATS, as the web gets them)."""
    items: list[E] = []

    async def received(msg: Msg) -> None:
        items.append(model.from_json(msg.data))

    await svc.broker.connection.subscribe(subject, cb=received)
    return items
