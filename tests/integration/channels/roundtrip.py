"""The whole system in one test process for channel round trips: the bus, a database, a
router worker, the web app with the channels' webhooks, and the gateway's delivery
consumers and inbound servers, all real; providers are fakes on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from agents.base import TriageAgent
from channels.gateway import ChannelGateway
from handoff.auth import hash_password
from router.app import Services
from router.settings import Settings
from router.web import channel_gateway, create_web_app, staff_store
from tests.integration.harness import rows, services, worker
from tests.integration.staff_helpers import client, sign_in

AGENT_PASSWORD = "agent-password-1"


@dataclass
class System:
    svc: Services
    gateway: ChannelGateway
    # The web app (webhooks, chat and console API) over an in-process transport.
    http: httpx.AsyncClient

    async def staff(self) -> httpx.AsyncClient:
        """A console client signed in as an admin (close it after use)."""
        # https: with a public https URL the session cookie is Secure.
        c = client(create_web_app(self.svc), "https://neuvonta.test", address="192.0.2.20")
        await sign_in(c, "boss", AGENT_PASSWORD)
        return c

    async def tickets(self) -> list[dict[str, Any]]:
        return await rows(self.svc, "ticket")

    async def replies(self) -> list[dict[str, Any]]:
        return [m for m in await rows(self.svc, "message") if m["role"] != "resident"]


@contextlib.asynccontextmanager
async def running(settings: Settings, agent: TriageAgent) -> AsyncIterator[System]:
    stopping = asyncio.Event()
    async with services(settings) as svc:
        await staff_store(svc).add("boss", hash_password(AGENT_PASSWORD), "admin")
        gateway = channel_gateway(svc)
        app = create_web_app(svc, gateway)
        gateway.start(svc.broker.connection.jetstream(), stopping)
        try:
            async with worker(svc, agent), client(app) as http:
                yield System(svc, gateway, http)
        finally:
            stopping.set()
            await gateway.stop()
