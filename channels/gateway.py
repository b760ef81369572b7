"""The provider channels a gateway process runs: which are on, their webhooks, their
inbound servers and pollers, and one delivery consumer per channel.

A channel is on when its credentials are configured (each adapter's ``from_settings``);
the web chat is always on and lives in ``channels.web``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import FastAPI
from nats.js import JetStreamContext

from channels.base import ChannelAdapter
from channels.delivery import DeliveryWorker, RetryPolicy, consumer_spec
from channels.inbox import Inbox
from handoff.delivery_failures import DeliveryFailures
from router.bus import run_batches
from router.events import Channel
from router.settings import Settings

log = logging.getLogger(__name__)

# The adapter packages, each with ``from_settings(settings) -> adapter | None``.
ADAPTER_MODULES = ("channels.sms", "channels.telegram", "channels.email")

Factory = Callable[[Settings], ChannelAdapter | None]


def adapter_factories() -> list[Factory]:
    return [importlib.import_module(name).from_settings for name in ADAPTER_MODULES]


def adapters_for(
    settings: Settings, factories: list[Factory] | None = None
) -> list[ChannelAdapter]:
    """The adapters of the channels whose credentials ``settings`` has (the channels on)."""
    return [a for f in factories or adapter_factories() if (a := f(settings))]


def channel_summary(settings: Settings, adapters: list[ChannelAdapter]) -> list[str]:
    """One line per channel for the start-up banner: on (and where) or off (and why)."""
    on = {c for a in adapters for c in a.channels}
    base = (settings.public_url or "").rstrip("/") or "<NEUVONTA_PUBLIC_URL>"
    email = [f"sending through {settings.smtp_host}"]
    if settings.imap_host:
        email.insert(0, f"IMAP {settings.imap_host}")
    if settings.smtp_listen_port:
        email.insert(0, f"SMTP on port {settings.smtp_listen_port}")
    webhook = bool(settings.public_url and settings.telegram_webhook_secret)
    # Each channel: where it is reached when on, what to set when off.
    rows = [
        (
            Channel.SMS,
            f"Twilio webhook {base}/webhooks/twilio",
            "set NEUVONTA_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and _FROM_NUMBER",
        ),
        (Channel.WHATSAPP, "through Twilio", "with Twilio"),
        (Channel.TELEGRAM, "webhook" if webhook else "polling", "set NEUVONTA_TELEGRAM_BOT_TOKEN"),
        (Channel.EMAIL, ", ".join(email), "set NEUVONTA_EMAIL_ADDRESS and NEUVONTA_SMTP_HOST"),
    ]
    return [f"{'web':<9} on: the chat page"] + [
        f"{c.value:<9} on: {where}" if c in on else f"{c.value:<9} off: {off}"
        for c, where, off in rows
    ]


@dataclass
class ChannelGateway:
    settings: Settings
    inbox: Inbox
    adapters: list[ChannelAdapter]
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def create(
        cls, settings: Settings, inbox: Inbox, factories: list[Factory] | None = None
    ) -> ChannelGateway:
        return cls(settings, inbox, adapters_for(settings, factories))

    def summary(self) -> list[str]:
        return channel_summary(self.settings, self.adapters)

    def mount(self, app: FastAPI) -> None:
        for adapter in self.adapters:
            if (router := adapter.webhooks(self.inbox)) is not None:
                app.include_router(router)

    def start(self, js: JetStreamContext, stopping: asyncio.Event) -> None:
        """Inbound servers and pollers, and the delivery consumers, as tasks."""
        s = self.settings
        retry = RetryPolicy(attempts=s.delivery_attempts, backoff=s.delivery_backoff)
        failures = DeliveryFailures(
            self.inbox.engine, self.inbox.publisher, case_prefix=s.case_prefix
        )
        for adapter in self.adapters:
            name = "+".join(c.value for c in adapter.channels)
            self._tasks.append(
                asyncio.create_task(adapter.receive(self.inbox, stopping), name=f"{name}-in")
            )
            worker = DeliveryWorker(
                adapter,
                self.inbox.engine,
                self.inbox.publisher,
                retry=retry,
                metrics=self.inbox.metrics,
                on_failure=failures,
            )
            for channel in adapter.channels:
                self._tasks.append(
                    asyncio.create_task(
                        run_batches(js, consumer_spec(channel, s.ack_wait), worker, stopping),
                        name=f"{channel.value}-out",
                    )
                )

    async def stop(self, patience: float = 15.0) -> None:
        """Wait for the tasks (``stopping`` must be set), then close the adapters."""
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=patience)
            for t in late:
                t.cancel()
            for t in self._tasks:
                if t.done() and not t.cancelled() and t.exception():
                    log.error("%s stopped with an error", t.get_name(), exc_info=t.exception())
        for adapter in self.adapters:
            with contextlib.suppress(Exception):
                await adapter.aclose()
