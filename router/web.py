"""The web side's factories: the resident side (web chat, knowledge-base pages, channel
webhooks) and the staff side (console, admin), and what feeds their live views.

Apart from ``router.app`` so that a router worker never imports it (channels, console
and admin cost about a second of imports on every worker start).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from pydantic import ValidationError

from agents.base import TriageAgent
from channels.gateway import ChannelGateway
from channels.inbox import Inbox
from channels.ratelimit import RateLimits
from channels.web.api import STATIC as CHAT_STATIC
from channels.web.api import add_chat, chat_router, reply_to_hub
from channels.web.hub import Hub
from handoff.admin.api import admin_router
from handoff.admin.insights import EVAL_QUESTIONS, Facts, eval_source
from handoff.auth import StaffAuth
from handoff.console.api import CONSOLE_TOPIC, console_router
from handoff.labels import LabelStore
from handoff.labels_api import labels_router
from handoff.staff import SessionPolicy, StaffStore
from handoff.tickets import TicketService
from router import subjects
from router.app import NO_TELEMETRY, Services, build_agent, load_knowledge, policy_store
from router.conversations import Conversations
from router.events import Channel, ReplyRequested
from router.ops import kb_router, ops_router

log = logging.getLogger(__name__)


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


def staff_store(services: Services) -> StaffStore:
    s = services.settings
    return StaffStore(
        services.engine,
        SessionPolicy(
            idle=timedelta(hours=s.session_idle_hours),
            lifetime=timedelta(hours=s.session_max_hours),
        ),
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
        telemetry=NO_TELEMETRY,
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


def _resident_side(app: FastAPI, services: Services, channels: ChannelGateway | None) -> None:
    chat = chat_router(
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
    add_chat(app, chat)
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


async def eval_agent(services: Services) -> TriageAgent:
    """A fresh agent over the system's knowledge base, as the workers build theirs, for the
    what-if's evaluation questions (the web process has no worker's agent to borrow).
    Built in a thread, as serve builds a worker's: it takes seconds of CPU (the language
    model, the indexes), which would stall every request of this process meanwhile."""
    docs = await load_knowledge(services)
    return await asyncio.to_thread(build_agent, services.settings, docs)
