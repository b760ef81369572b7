"""Prometheus metrics, in a registry the app factory owns (no module-level state).

With router workers in child processes (``serve``), each worker writes its figures to files
in a shared folder (prometheus_client's multiprocess mode, switched on by the
``PROMETHEUS_MULTIPROC_DIR`` its parent sets) and the web process, which registers only its
own gateway metrics, adds the workers' from that folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from router.decide import Action, Decision

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        router: bool = True,
        workers_dir: Path | None = None,
    ) -> None:
        """``router=False`` with ``workers_dir``: the router's figures come from workers."""
        self.registry = registry or CollectorRegistry()
        g = self.registry
        r = self.registry if router else None
        if workers_dir is not None:
            MultiProcessCollector(self.registry, path=str(workers_dir))  # type: ignore[no-untyped-call]
        self.messages_in = Counter(
            "neuvonta_messages_received",
            "Resident messages accepted by a gateway",
            ["channel"],
            registry=g,
        )
        self.rejected = Counter(
            "neuvonta_messages_rejected",
            "Inbound requests refused (bad input, auth)",
            ["channel", "reason"],
            registry=g,
        )
        self.answered = Counter(
            "neuvonta_messages_answered",
            "Messages answered automatically",
            ["channel"],
            registry=r,
        )
        self.clarified = Counter(
            "neuvonta_messages_clarified",
            "Messages answered with a clarifying question",
            ["channel"],
            registry=r,
        )
        self.handed_off = Counter(
            "neuvonta_messages_handed_off",
            "Messages handed to people",
            ["channel", "reason", "queue"],
            registry=r,
        )
        self.held = Counter(
            "neuvonta_messages_held",
            "Messages in conversations a person owns",
            ["channel"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "neuvonta_messages_dead_lettered",
            "Messages the router could not process",
            ["stream"],
            registry=r,
        )
        # The gateway's deliveries on provider channels: sent | retried | failed | suppressed.
        self.deliveries = Counter(
            "neuvonta_reply_deliveries",
            "Reply delivery attempts on provider channels, by outcome",
            ["channel", "outcome"],
            registry=g,
        )
        self.reply_latency = Histogram(
            "neuvonta_reply_latency_seconds",
            "From accepting a resident message to its reply being stored",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.agent_latency = Histogram(
            "neuvonta_triage_latency_seconds",
            "Time the triage agent took per message",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

        # 1 while the model endpoint's circuit is open or probing (the offline agent or
        # people answer meanwhile); the highest of the live workers.
        self.llm_circuit = Gauge(
            "neuvonta_llm_circuit_open",
            "1 while the LLM endpoint's circuit breaker is open or half-open, else 0",
            registry=r,
            multiprocess_mode="livemax",
        )

        # Set from the database at each scrape (the web process; see ops_router).
        self.tickets_overdue = Gauge(
            "neuvonta_tickets_overdue",
            "Open tickets past their queue's first-response target, without a person's reply",
            ["queue"],
            registry=g,
        )

    def set_overdue(self, counts: dict[str, int], queues: Iterable[str]) -> None:
        """Every known queue gets a value (0 too): a dashboard sees a queue drain to zero."""
        for queue in {*queues, *counts}:
            self.tickets_overdue.labels(queue).set(counts.get(queue, 0))

    def circuit(self, state: str) -> None:
        """The LLM agent's circuit state (closed, open, half_open)."""
        self.llm_circuit.set(0 if state == "closed" else 1)

    def decided(self, decision: Decision, channel: str) -> None:
        match decision.action:
            case Action.ANSWER:
                self.answered.labels(channel).inc()
            case Action.CLARIFY:
                self.clarified.labels(channel).inc()
            case Action.HANDOFF:
                reason = decision.reason.value if decision.reason else "unknown"
                self.handed_off.labels(channel, reason, decision.queue).inc()
            case Action.HOLD:
                self.held.labels(channel).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def fresh_workers_dir(path: Path) -> Path:
    """An empty folder for the workers' metric files (counts start with the process tree)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
