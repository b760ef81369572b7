"""App factories: the shared services and the router worker (the web side: ``router.web``).

Nothing here lives at module level: every process builds its own from ``Settings``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from faststream.nats import NatsBroker
from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.base import Document, TriageAgent
from agents.heap import settle_heap
from agents.knowledge.store import KnowledgeStore, read_docs_jsonl
from channels.web.hub import Hub
from handoff.policy_store import LivePolicy, PolicyStore
from handoff.queues import DEFAULT_QUEUES, Queue, default_policy, queue_availability, queues_for
from router import subjects
from router.bus import (
    ConsumerSpec,
    EventPublisher,
    config_bucket,
    ensure_streams,
    patiently,
    run_batches,
)
from router.db import create_engine, create_schema, insert_many_ignore
from router.events import DeadLettered, utcnow
from router.metrics import Metrics
from router.ops import ops_router
from router.pipeline import Pipeline
from router.policy import Policy
from router.settings import Settings, nats_servers
from router.store import RouterStore
from router.tables import DeadLetterRow
from router.worker import InboundHandler

if TYPE_CHECKING:
    from agents.vectors import VectorStore

log = logging.getLogger(__name__)

# FastAPI's native OpenTelemetry looks up the global providers on every request; the
# figures are on /metrics (Prometheus) instead.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


@dataclass
class Services:
    """Connections one process shares between its parts."""

    settings: Settings
    engine: AsyncEngine
    broker: NatsBroker
    metrics: Metrics = field(default_factory=Metrics)
    hub: Hub = field(default_factory=Hub)
    # The municipality's queues (NEUVONTA_QUEUES_FILE), read once per process.
    queues: tuple[Queue, ...] = DEFAULT_QUEUES

    @classmethod
    def create(
        cls, settings: Settings, nats_url: str, *, metrics: Metrics | None = None
    ) -> Services:
        broker = NatsBroker(
            nats_servers(nats_url),
            # FastStream logs every message at INFO by default; that costs ~40 % throughput.
            log_level=logging.DEBUG,
            logger=logging.getLogger("neuvonta.faststream"),
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
        )
        return cls(
            settings=settings,
            engine=create_engine(settings.database),
            broker=broker,
            metrics=metrics or Metrics(),
            queues=queues_for(settings),
        )

    @property
    def publisher(self) -> EventPublisher:
        return EventPublisher(self.broker.connection.jetstream())

    def nats_connected(self) -> bool:
        try:
            return bool(self.broker.connection.is_connected)
        except Exception:
            return False

    async def start(self) -> None:
        """Connect, create streams, the configuration bucket and tables. Subscribers must be
        included before this."""
        await self.broker.connect()
        js = self.broker.connection.jetstream()
        replicas = self.settings.jetstream_replicas

        async def setup() -> None:
            # A resident's events never outlive their data's retention in the streams either.
            await ensure_streams(js, replicas, self.settings.longest_stream_age)
            await config_bucket(js, replicas)

        await patiently("the streams", setup)
        await create_schema(self.engine)
        await self.broker.start()

    async def stop(self) -> None:
        try:
            await self.broker.stop()
        except Exception:  # a lost connection has nothing left to drain
            log.warning("NATS connection closed uncleanly", exc_info=True)
        await self.engine.dispose()


class DeadLetterKeeper:
    """Keeps dead letters in the database, where admins see them; acks once stored."""

    SPEC = ConsumerSpec(
        stream=subjects.Stream.DEADLETTER,
        durable="router-deadletter",
        subject=f"{subjects.PREFIX}.deadletter.>",
        batch=64,
    )

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.table = DeadLetterRow.__table__  # type: ignore[attr-defined]

    async def __call__(self, msgs: Sequence[Msg]) -> None:
        rows = []
        for m in msgs:
            try:
                event = DeadLettered.from_json(m.data)
            except ValidationError:
                log.error("unreadable dead letter at stream seq %d", m.metadata.sequence.stream)
                event = DeadLettered(
                    stream=subjects.Stream.DEADLETTER.value,
                    stream_seq=m.metadata.sequence.stream,
                    subject=m.subject,
                    error="unreadable dead letter",
                    deliveries=m.metadata.num_delivered,
                    payload=m.data.decode("utf-8", "replace"),
                )
            rows.append(
                {
                    "stream": event.stream,
                    "stream_seq": event.stream_seq,
                    "subject": event.subject,
                    "error": event.error,
                    "deliveries": event.deliveries,
                    "payload": event.payload,
                    "created_at": event.occurred_at,
                }
            )
        async with self.engine.begin() as conn:
            await insert_many_ignore(conn, self.table, rows)
        await asyncio.gather(*(m.ack() for m in msgs))


def policy_store(services: Services, base: Policy | None = None) -> PolicyStore:
    """The handoff thresholds in the database and the NATS KV entry the workers watch,
    laid over ``base`` (the configured policy unless given)."""
    s = services.settings
    return PolicyStore(
        services.engine,
        base or initial_policy(s, services.queues),
        queues=[q.name for q in services.queues],
        js=services.broker.connection.jetstream(),
        replicas=s.jetstream_replicas,
    )


def create_ops_app(services: Services) -> FastAPI:
    """Health and metrics alone: what a router worker serves (NEUVONTA_WORKER_HTTP_PORT)."""
    app = FastAPI(
        title="Neuvonta worker",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry=NO_TELEMETRY,
    )
    app.include_router(
        ops_router(
            engine=services.engine,
            nats_connected=services.nats_connected,
            metrics=services.metrics,
        )
    )
    return app


async def load_knowledge(services: Services) -> list[Document]:
    """The knowledge base; on the very first start, seeded from the configured files.

    Workers starting together on an empty database all try to seed it: the files go in
    one transaction, and whoever loses the race reads what the winner wrote.
    """
    kb = KnowledgeStore(services.engine)
    if await kb.count() == 0 and services.settings.kb_seed:
        seed = services.settings.kb_seed
        docs = [d for path in seed for d in read_docs_jsonl(path.read_text("utf-8").splitlines())]
        try:
            added, _ = await kb.upsert(docs)
        except (IntegrityError, OperationalError):
            if await kb.count() == 0:
                raise
            log.info("knowledge base seeded by another process meanwhile")
        else:
            names = ", ".join(p.name for p in seed)
            log.info("knowledge base seeded with %d documents from %s", added, names)
    return await kb.all()


def build_agent(
    settings: Settings, docs: list[Document], metrics: Metrics | None = None
) -> TriageAgent:
    """The configured agent; ``metrics`` (a router worker's) get the LLM circuit's state."""
    if settings.agent == "noop":
        from agents.noop import NoopAgent

        return NoopAgent(docs)
    from agents.knowledge.seed_vectors import seed_cache
    from agents.offline import OfflineAgent
    from agents.vectors import embedder_for

    cache = settings.vector_cache
    if seeded := seed_cache(cache, settings.kb_seed):
        log.info("%d passage vectors taken from the bundled knowledge base", seeded)
    base = (settings.public_url or "").rstrip("/")
    offline = OfflineAgent(
        docs,
        doc_url_template=base + "/kb/{doc_id}?lang={lang}",
        vector_cache=cache,
        embedder=embedder_for(settings.query_encoder, settings.query_threads),
        shared_vectors=shared_vectors(settings),
    )
    if settings.agent != "llm":
        return offline
    from agents.llm import llm_agent_from_settings

    llm = llm_agent_from_settings(
        settings, offline, on_circuit=metrics.circuit if metrics is not None else None
    )
    if llm is None:
        log.warning(
            "NEUVONTA_AGENT=llm, but NEUVONTA_LLM_BASE_URL and NEUVONTA_LLM_MODEL (or "
            "NEUVONTA_LLM_AZURE_DEPLOYMENT) are not set: the offline agent answers"
        )
        return offline
    return llm


def shared_vectors(settings: Settings) -> Callable[[str], VectorStore] | None:
    """With PostgreSQL, passage vectors are shared in it by every worker (a new worker pod
    takes them instead of embedding the pages again); SQLite is one machine's, whose
    workers share the data folder's file already."""
    if make_url(settings.database).get_backend_name() == "sqlite":
        return None
    from agents.knowledge.shared_vectors import DatabaseVectors

    return lambda model_id: DatabaseVectors(settings.database, model_id)


def settle_agent(agent: TriageAgent | None, timeout: float = 120.0) -> None:
    """Once the agent's index is built (no agent: at once), take the long-lived heap out of
    the garbage collector's way (``agents.heap``). Only for a serving process's agent: what
    a freeze holds is never collected, so a short-lived agent would stay in memory."""
    wait = getattr(agent, "wait_indexed", None)
    if callable(wait):
        wait(timeout)
    log.info("heap settled: %d long-lived objects left out of garbage collection", settle_heap())


def close_agent(agent: TriageAgent) -> None:
    """Let an agent stop its background work (the offline agent's vector indexer)."""
    close = getattr(agent, "close", None)
    if callable(close):
        close()


async def shutdown_agent(agent: TriageAgent) -> None:
    """Close an agent's connections (the LLM client), then its background work."""
    aclose = getattr(agent, "aclose", None)
    if callable(aclose):
        try:
            await aclose()
        except Exception:
            log.warning("closing the %s agent failed", agent.name, exc_info=True)
    await asyncio.to_thread(close_agent, agent)


class RouterWorker:
    """Consumes resident messages until told to stop; finishes the batch in hand.

    ``policy`` is the configured one; the thresholds admins set replace its thresholds and
    rules at start and whenever they change (``handoff.policy_store.LivePolicy``).
    """

    def __init__(
        self,
        services: Services,
        agent: TriageAgent,
        policy: Policy,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        s = services.settings
        self.services = services
        self.agent = agent
        self.policy = policy
        self.live = LivePolicy(policy_store(services, base=policy), self._use_policy)
        self.spec = ConsumerSpec(
            stream=subjects.Stream.CONVERSATIONS,
            durable=subjects.Durable.ROUTER_INBOUND.value,
            subject=subjects.ALL_MESSAGES_RECEIVED,
            batch=s.router_batch,
            ack_wait=s.ack_wait,
            in_flight=s.router_batches_in_flight,
        )
        self.handler = InboundHandler(
            Pipeline(
                RouterStore(services.engine),
                agent,
                lambda: self.policy,
                services.metrics,
                agent_timeout=s.agent_timeout,
                case_prefix=s.case_prefix,
                availability=queue_availability(services.queues),
                clock=clock,
            ),
            services.publisher,
            services.metrics,
        )
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()

    def _use_policy(self, policy: Policy) -> None:
        # The pipeline reads it once per batch: a batch is decided under one version.
        self.policy = policy

    async def run(self) -> None:
        js = self.services.broker.connection.jetstream()
        await self.live.load()
        await asyncio.gather(
            run_batches(js, self.spec, self.handler, self.stopping, ready=self.ready),
            run_batches(
                js, DeadLetterKeeper.SPEC, DeadLetterKeeper(self.services.engine), self.stopping
            ),
            self.live.run(self.stopping),
        )

    def stop(self) -> None:
        self.stopping.set()


def initial_policy(settings: Settings, queues: tuple[Queue, ...] = DEFAULT_QUEUES) -> Policy:
    return default_policy(settings.default_threshold, queues)
