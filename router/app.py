"""App factories: the shared services, the web app (gateway + console), and the router worker.

Nothing here lives at module level: every process builds its own from ``Settings``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.base import Document, TriageAgent
from agents.knowledge.store import KnowledgeStore, read_docs_jsonl
from channels.gateway import ChannelGateway
from channels.inbox import Inbox
from channels.ratelimit import RateLimits
from channels.web.api import STATIC as CHAT_STATIC
from channels.web.api import chat_router, reply_to_hub
from channels.web.hub import Hub
from handoff.admin.api import admin_router
from handoff.admin.insights import EVAL_QUESTIONS, Facts, eval_source
from handoff.auth import StaffAuth
from handoff.console.api import CONSOLE_TOPIC, console_router
from handoff.labels import LabelStore
from handoff.labels_api import labels_router
from handoff.policy_store import LivePolicy, PolicyStore
from handoff.queues import DEFAULT_QUEUES, Queue, default_policy, queue_availability, queues_for
from handoff.staff import SessionPolicy, StaffStore
from handoff.tickets import TicketService
from router import subjects
from router.bus import (
    ConsumerSpec,
    EventPublisher,
    config_bucket,
    ensure_streams,
    run_batches,
)
from router.conversations import Conversations
from router.db import create_engine, create_schema, insert_many_ignore
from router.events import Channel, DeadLettered, ReplyRequested, utcnow
from router.metrics import Metrics
from router.ops import kb_router, ops_router
from router.pipeline import Pipeline
from router.policy import Policy
from router.settings import Settings, nats_servers
from router.store import RouterStore
from router.tables import DeadLetterRow
from router.worker import InboundHandler

log = logging.getLogger(__name__)

# Seconds a starting process waits for JetStream to answer.
STARTUP_PATIENCE = 60.0


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
        # A cluster electing leaders (a node just lost) answers with timeouts for seconds.
        deadline = time.monotonic() + STARTUP_PATIENCE
        while True:
            try:
                await ensure_streams(js, self.settings.jetstream_replicas)
                await config_bucket(js, self.settings.jetstream_replicas)
                break
            except (NatsError, TimeoutError) as e:
                if time.monotonic() > deadline:
                    raise
                log.warning("JetStream not ready (%s); trying again", type(e).__name__)
                await asyncio.sleep(1.0)
        await create_schema(self.engine)
        await self.broker.start()

    async def stop(self) -> None:
        try:
            await self.broker.stop()
        except Exception:  # a lost connection has nothing left to drain
            log.warning("NATS connection closed uncleanly", exc_info=True)
        await self.engine.dispose()


async def subscribe_browsers(nc: NatsClient, hub: Hub) -> None:
    """Live updates for the browsers connected to this process (every process gets all).

    Plain core-NATS callbacks, no FastStream handler: every reply of every conversation
    passes through every web process, and usually no browser of it is connected here, so
    the common case must cost one check. Never replying also keeps clear of the stream's
    acknowledgement to the JetStream publisher.
    """

    async def web_reply(msg: Msg) -> None:
        if hub.idle:
            return
        try:
            reply = ReplyRequested.from_json(msg.data)
        except ValidationError:
            log.warning("unreadable web reply event on %s", msg.subject)
            return
        reply_to_hub(hub, reply)

    async def ticket_event(msg: Msg) -> None:
        if not hub.listeners(CONSOLE_TOPIC):
            return
        try:
            body = json.loads(msg.data)
        except ValueError:
            log.warning("unreadable ticket event on %s", msg.subject)
            return
        hub.publish(CONSOLE_TOPIC, body)

    await nc.subscribe(subjects.reply_requested(Channel.WEB), cb=web_reply)
    await nc.subscribe(subjects.ALL_HANDOFF, cb=ticket_event)


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


def staff_store(services: Services) -> StaffStore:
    s = services.settings
    return StaffStore(
        services.engine,
        SessionPolicy(
            idle=timedelta(hours=s.session_idle_hours),
            lifetime=timedelta(hours=s.session_max_hours),
        ),
    )


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


def create_web_app(
    services: Services,
    channels: ChannelGateway | None = None,
    *,
    residents: bool = True,
    staff: bool = True,
) -> FastAPI:
    """The web app: the resident side (web chat, knowledge-base pages, and the webhooks of
    ``channels``), the staff side (console, admin, their API), or both; health and metrics
    in each."""
    app = FastAPI(
        title="Neuvonta",
        summary="Multi-channel customer service with a grounded AI and human handoff",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    if residents:
        _resident_side(app, services, channels)
    refresh_overdue = _staff_side(app, services) if staff else None
    app.include_router(
        ops_router(
            engine=services.engine,
            nats_connected=services.nats_connected,
            metrics=services.metrics,
            before_scrape=refresh_overdue,
        )
    )
    app.mount("/static", StaticFiles(directory=CHAT_STATIC), name="static")
    return app


def create_ops_app(services: Services) -> FastAPI:
    """Health and metrics alone: what a router worker serves (NEUVONTA_WORKER_HTTP_PORT)."""
    app = FastAPI(title="Neuvonta worker", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(
        ops_router(
            engine=services.engine,
            nats_connected=services.nats_connected,
            metrics=services.metrics,
        )
    )
    return app


def _resident_side(app: FastAPI, services: Services, channels: ChannelGateway | None) -> None:
    app.include_router(
        chat_router(
            conversations=Conversations(services.engine),
            publisher=services.publisher,
            hub=services.hub,
            metrics=services.metrics,
            max_chars=services.settings.max_message_chars,
            # One set of limits for the process: the channels' inbox holds it when it runs here.
            limits=channels.inbox.limits
            if channels is not None
            else RateLimits.from_settings(services.settings),
        )
    )
    app.include_router(kb_router(engine=services.engine))
    if channels is not None:
        channels.mount(app)


def _staff_side(app: FastAPI, services: Services) -> Callable[[], Awaitable[None]]:
    """The console and admin; returns what refreshes the overdue gauge before a scrape."""
    s = services.settings
    auth = StaffAuth(staff_store(services), queues=services.queues, public_url=s.public_url)
    app.include_router(auth.router())
    tickets = TicketService(services.engine, services.publisher, queues=services.queues)
    app.include_router(
        console_router(
            tickets=tickets,
            queues=services.queues,
            hub=services.hub,
            current_user=auth.current_user,
            still_signed_in=auth.still_signed_in,
        )
    )
    app.include_router(
        labels_router(
            tickets=tickets, labels=LabelStore(services.engine), current_user=auth.current_user
        )
    )
    thresholds = policy_store(services)
    app.include_router(
        admin_router(
            store=thresholds,
            current_user=auth.current_user,
            facts=Facts(services.engine),
            eval_samples=eval_source(
                s.data_dir / EVAL_QUESTIONS, lambda: eval_agent(services), thresholds.base
            ),
        )
    )

    async def refresh_overdue() -> None:
        services.metrics.set_overdue(
            await tickets.overdue_counts(), (q.name for q in services.queues)
        )

    return refresh_overdue


def channel_gateway(services: Services) -> ChannelGateway:
    """The provider channels this process runs (those with credentials)."""
    inbox = Inbox(
        services.engine,
        services.publisher,
        services.metrics,
        RateLimits.from_settings(services.settings),
    )
    return ChannelGateway.create(services.settings, inbox)


async def load_knowledge(services: Services) -> list[Document]:
    """The knowledge base; on the very first start, seeded from the configured files."""
    kb = KnowledgeStore(services.engine)
    if await kb.count() == 0:
        for path in services.settings.kb_seed:
            docs = read_docs_jsonl(path.read_text(encoding="utf-8").splitlines())
            added, _ = await kb.upsert(docs)
            log.info("knowledge base seeded with %d documents from %s", added, path.name)
    return await kb.all()


def build_agent(settings: Settings, docs: list[Document]) -> TriageAgent:
    if settings.agent == "noop":
        from agents.noop import NoopAgent

        return NoopAgent(docs)
    from agents.knowledge.seed_vectors import seed_cache
    from agents.offline import OfflineAgent
    from agents.vectors import embedder_for

    cache = settings.data_dir / "kb-vectors"
    if seeded := seed_cache(cache, settings.kb_seed):
        log.info("%d passage vectors taken from the bundled knowledge base", seeded)
    base = (settings.public_url or "").rstrip("/")
    offline = OfflineAgent(
        docs,
        doc_url_template=base + "/kb/{doc_id}?lang={lang}",
        vector_cache=cache,
        embedder=embedder_for(settings.query_encoder),
    )
    if settings.agent != "llm":
        return offline
    from agents.llm import llm_agent_from_settings

    llm = llm_agent_from_settings(settings, offline)
    if llm is None:
        log.warning(
            "NEUVONTA_AGENT=llm, but NEUVONTA_LLM_BASE_URL and NEUVONTA_LLM_MODEL (or "
            "NEUVONTA_LLM_AZURE_DEPLOYMENT) are not set: the offline agent answers"
        )
        return offline
    return llm


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


async def eval_agent(services: Services) -> TriageAgent:
    """A fresh agent over the system's knowledge base, as the workers build theirs, for the
    what-if's evaluation questions (the web process has no worker's agent to borrow)."""
    return build_agent(services.settings, await load_knowledge(services))


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
