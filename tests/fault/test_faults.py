"""Faults under load: a 3-node NATS cluster (JetStream replicas 3), a throwaway PostgreSQL,
one ``neuvonta gateway`` and two ``neuvonta worker`` processes with the LLM agent.

Thousands of resident messages arrive over web chat and signed Twilio webhooks at a steady
rate while a worker is killed (and replaced), the NATS node leading the conversations
stream is killed (and restarted), PostgreSQL restarts, the model endpoint answers 500 for a
while and Twilio refuses a burst of sends with 500. Clients behave as the real ones do: a
browser sends a message again with the same ``client_message_id`` after a 503 or a broken
connection; Twilio posts the same webhook again after a 503.

Then, from the database: every accepted message is stored once, decided once, and has
exactly one outcome (one reply, or its case on a ticket); nothing else is stored; no SMS
reply reached Twilio twice and every one due was sent, the 5xx burst notwithstanding.

Two small tests at the end pin down, deterministically, what the load showed about two
messages of one conversation close together (in one batch; in two workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.base import Assessment, TriageRequest
from channels.delivery import consumer_spec
from router.app import Services
from router.db import create_engine
from router.events import Address, Channel, MessageReceived, utcnow
from router.subjects import Durable, Stream
from tests.conftest import missing
from tests.fakes.openai_server import OpenAIFake, Reply, answer, slow, status
from tests.fakes.twilio_server import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FakeTwilio,
    inbound_sms,
    new_sid,
    signed_form,
)
from tests.fault.cluster import (
    HarnessError,
    NatsCluster,
    Neuvonta,
    Postgres,
    PostgresUnavailable,
    base_env,
    until,
)
from tests.integration import harness

ROOT = Path(__file__).resolve().parents[2]
DEMO_KB = ROOT / "agents/knowledge/demo/ptv-general-descriptions.docs.jsonl"
DEMO_VECTORS = DEMO_KB.with_name("ptv-general-descriptions.vectors.npz")
QUESTIONS = ROOT / "tests/unit/agents/data/mini.questions.jsonl"
# The four services mini.questions.jsonl asks about: a small knowledge base keeps the
# workers' start and each triage cheap on a 2-core machine.
KB_IDS = (
    "6d5b9dea-beb0-4458-b7f9-4d0bd982ccf7",  # Library services
    "4a26a78e-bfa1-4799-ae77-7827bd546646",  # Waste management
    "448efa73-256b-4932-9079-5c11296e6f7e",  # Building permit
    "c52233a0-2089-437d-b841-ae4676399976",  # Municipal family day care
)

PUBLIC = "https://neuvonta.kunta.example"
OURS = "+358451234567"

# The load: MESSAGES at RATE per second (about a minute and a half), a quarter by SMS.
RATE = 30.0
MESSAGES = 2400
WEB_SESSIONS = 400
SMS_RESIDENTS = 150
SMS_SHARE = 0.25
# A client gives up on one message after this long (it never should).
CLIENT_PATIENCE = 60.0
# Everything decided and every SMS reply sent this long after the last message is taken:
# far above the SMS retries' worst case (0.5 + 1 + 2 + 4 + 8 s with the
# NEUVONTA_DELIVERY_BACKOFF below) and the workers' NEUVONTA_ACK_WAIT (10 s); a reply the
# SMS delivery consumer lost in flight comes back after its ack_wait (40 s here,
# channels.delivery.consumer_spec).
SETTLE_DEADLINE = 120.0
# A supervisor starts a worker that exits at start again, this many times at most.
START_TRIES = 5
# The worker is killed holding at least this many messages, PostgreSQL stopped with at
# least this many SMS on their way to Twilio.
IN_HAND = 5
IN_FLIGHT = 3
# How long Twilio takes to accept a message.
TWILIO_LATENCY = 0.3


# ---- fakes with what the test needs to see ----


class DoubledDelivery(AssertionError):
    """A reply reached the resident more than once."""


@dataclass
class RecordingTwilio(FakeTwilio):
    """FakeTwilio that takes its time as Twilio does, counts the calls it is answering, and
    keeps the id it gave each accepted message."""

    sids: dict[str, dict[str, str]] = field(default_factory=dict)
    refused: int = 0
    # Seconds each call takes (Twilio's API: a few hundred milliseconds).
    latency: float = 0.0
    in_flight: int = 0

    async def _messages(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            await asyncio.sleep(self.latency)
            return await super()._messages(request)
        finally:
            self.in_flight -= 1

    def _resource(self, form: dict[str, str]) -> dict[str, Any]:
        resource = super()._resource(form)
        self.sids[resource["sid"]] = form
        return resource

    def burst(self, n: int) -> None:
        self.refused += n
        self.fail_next(n, 500)

    @property
    def failures_left(self) -> int:
        return len(self._failures)


@dataclass
class Model:
    """The model endpoint's behaviour: a grounded answer quoting the first source sent, or
    500 while ``failing``."""

    failing: bool = False
    # Seconds before each answer.
    delay: float = 0.0
    answered: int = 0
    refused: int = 0

    def __call__(self, body: dict[str, Any]) -> Reply:
        if self.failing:
            self.refused += 1
            return status(500, message="fault test: the endpoint is down")
        data = json.loads(body["messages"][-1]["content"])
        first = data["sources"][0]
        self.answered += 1
        reply = answer(
            first["text"].split(".")[0] + ".", [first["id"]], language=data["reply_language"]
        )
        return slow(self.delay, reply) if self.delay else reply


# ---- the clients: browsers and Twilio ----


@dataclass
class Ledger:
    """What the clients sent and what the gateway accepted."""

    web: dict[str, str] = field(default_factory=dict)  # message id -> session
    sms: dict[str, str] = field(default_factory=dict)  # MessageSid -> phone number
    answers: Counter[str] = field(default_factory=Counter)  # HTTP status / error, per try
    gave_up: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    # When a try failed (5xx or a broken connection), on the monotonic clock.
    failed_at: list[float] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.web) + len(self.sms)


async def _until_taken(
    ledger: Ledger, what: str, attempt: Callable[[], Awaitable[httpx.Response]]
) -> httpx.Response | None:
    """Send until the gateway takes it, as a client does: again after 5xx or a broken
    connection (the same message: the same client_message_id / MessageSid)."""
    deadline = time.monotonic() + CLIENT_PATIENCE
    pause = 0.2
    while time.monotonic() < deadline:
        try:
            r = await attempt()
        except httpx.TransportError as e:
            ledger.answers[type(e).__name__] += 1
        else:
            ledger.answers[str(r.status_code)] += 1
            if r.status_code < 500:
                return r
        ledger.failed_at.append(time.monotonic())
        await asyncio.sleep(pause)
        pause = min(2.0, pause * 2)
    ledger.gave_up.append(what)
    return None


async def post_web(
    http: httpx.AsyncClient, ledger: Ledger, session: str, question: str, client_id: str
) -> None:
    r = await _until_taken(
        ledger,
        f"web {client_id}",
        lambda: http.post(
            f"/api/chat/sessions/{session}/messages",
            json={"text": question, "client_message_id": client_id},
        ),
    )
    if r is None:
        return
    if r.status_code != 202:
        ledger.refused.append(f"web {r.status_code}: {r.text[:200]}")
        return
    ledger.web[r.json()["message_id"]] = session


async def post_sms(http: httpx.AsyncClient, ledger: Ledger, phone: str, question: str) -> None:
    sid = new_sid()
    form = inbound_sms(sid, phone, question, to=OURS)

    async def once() -> httpx.Response:
        body, headers = signed_form(PUBLIC + "/webhooks/twilio", form)
        return await http.post("/webhooks/twilio", content=body, headers=headers)

    r = await _until_taken(ledger, f"sms {sid}", once)
    if r is None:
        return
    if r.status_code != 200:
        ledger.refused.append(f"sms {r.status_code}: {r.text[:200]}")
        return
    ledger.sms[sid] = phone


def questions() -> list[str]:
    """The questions, the usual ones often and those a person must take (an emergency, a
    personal case, off-topic) now and then: most conversations stay with the AI."""
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]
    weighted: list[str] = []
    for row in rows:
        to_people = row["urgent"] or not row["expected_docs"]
        weighted += [row["text"]] * (1 if to_people else 12)
    return weighted


# ---- the system ----


@dataclass
class System:
    root: Path
    nats: NatsCluster
    pg: Postgres
    twilio: RecordingTwilio
    model: Model
    openai: OpenAIFake
    gateway: Neuvonta
    workers: list[Neuvonta]
    engine: AsyncEngine
    env: dict[str, str]
    retired: list[Neuvonta] = field(default_factory=list)

    def worker(self, name: str, nats_url: str) -> Neuvonta:
        return Neuvonta(
            "worker",
            name,
            self.root / name,
            {**self.env, **worker_env(self.openai), "NATS_URL": nats_url},
        )

    @property
    def processes(self) -> list[Neuvonta]:
        """Every Neuvonta process started, running or not."""
        return [self.gateway, *self.workers, *self.retired]

    def logs(self) -> str:
        return "\n".join(p.tail(25) for p in self.processes)


def kb_seed(folder: Path) -> Path:
    """The four services as a seed file, with the bundled vectors beside it (no embedding
    of passages at start)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        line
        for line in DEMO_KB.read_text(encoding="utf-8").splitlines()
        if json.loads(line)["id"] in KB_IDS
    ]
    assert len(rows) == len(KB_IDS)
    seed = folder / "fault.docs.jsonl"
    seed.write_text("\n".join(rows) + "\n", encoding="utf-8")
    shutil.copyfile(DEMO_VECTORS, folder / "fault.vectors.npz")
    return seed


def common_env(seed: Path, twilio: FakeTwilio, database_url: str) -> dict[str, str]:
    return base_env(
        {
            "DATABASE_URL": database_url,
            "NEUVONTA_JETSTREAM_REPLICAS": "3",
            "NEUVONTA_LOG_LEVEL": "INFO",
            "NEUVONTA_RATE_LIMIT_IP": "0",
            "NEUVONTA_RATE_LIMIT_SENDER": "0",
            "NEUVONTA_KB_SEED": json.dumps([str(seed)]),
            "NEUVONTA_PUBLIC_URL": PUBLIC,
            "NEUVONTA_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "NEUVONTA_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "NEUVONTA_TWILIO_FROM_NUMBER": OURS,
            "NEUVONTA_TWILIO_API_URL": twilio.url,
            # Retries spread over ~15 s: a burst of refusals is outlived, not dead-lettered.
            "NEUVONTA_DELIVERY_BACKOFF": "0.5",
            # A killed worker's messages come back after this long.
            "NEUVONTA_ACK_WAIT": "10",
            "OMP_NUM_THREADS": "1",
        }
    )


def worker_env(openai: OpenAIFake) -> dict[str, str]:
    return {
        "NEUVONTA_AGENT": "llm",
        "NEUVONTA_QUERY_ENCODER": "int8",
        "NEUVONTA_LLM_BASE_URL": openai.base_url,
        "NEUVONTA_LLM_API_KEY": openai.api_key,
        "NEUVONTA_LLM_MODEL": openai.model,
        "NEUVONTA_AGENT_TIMEOUT": "4",
        "NEUVONTA_LLM_TIMEOUT": "2",
        "NEUVONTA_LLM_RETRIES": "1",
        "NEUVONTA_LLM_BREAKER_FAILURES": "5",
        "NEUVONTA_LLM_BREAKER_RESET": "3",
    }


@contextlib.asynccontextmanager
async def running_system(tmp_path: Path) -> AsyncIterator[System]:
    """Everything up: the cluster and PostgreSQL first, then the gateway, then the workers.

    Whatever happens, every process is killed at the end.
    """
    try:
        pg = Postgres()
    except PostgresUnavailable as e:
        missing(str(e))
        raise AssertionError("unreachable") from e
    nats_cluster = NatsCluster(tmp_path / "nats")
    model = Model()
    try:
        nats_cluster.start()
        await asyncio.to_thread(pg.init)
        pg.start()
        await nats_cluster.wait_ready()
        await pg.wait_ready()
        await pg.create_database()
        seed = kb_seed(tmp_path / "kb")
        twilio = RecordingTwilio(latency=TWILIO_LATENCY)
        async with twilio, OpenAIFake(default=model) as openai:
            env = common_env(seed, twilio, pg.url)
            # One server each (NATS_URL could list all three): every client learns the
            # others from the cluster and fails over to them.
            urls = nats_cluster.urls
            gateway = Neuvonta(
                "gateway",
                "gateway",
                tmp_path / "gateway",
                # Twilio's client logs ten lines per request at INFO.
                {**env, "NATS_URL": urls[0], "NEUVONTA_LOG_LEVEL": "WARNING"},
            )
            system = System(
                tmp_path,
                nats_cluster,
                pg,
                twilio,
                model,
                openai,
                gateway,
                [],
                create_engine(pg.url),
                env,
            )
            system.workers = [system.worker(f"worker{i}", urls[1 + i]) for i in range(2)]
            try:
                gateway.start()
                await gateway.wait_started()
                for w in system.workers:
                    w.start()
                await asyncio.gather(*(w.wait_started() for w in system.workers))
                yield system
            finally:
                for proc in system.processes:
                    proc.kill()
                await system.engine.dispose()
    finally:
        nats_cluster.close()
        pg.close()


# ---- faults ----


@dataclass
class Faults:
    system: System
    started: float = field(default_factory=time.monotonic)
    log: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        line = f"{time.monotonic() - self.started:6.1f} s  {what}"
        self.log.append(line)
        print(line, flush=True)

    async def provider_burst(self, n: int) -> None:
        self.system.twilio.burst(n)
        self.note(f"Twilio: the next {n} sends answer 500")

    async def model_outage(self, seconds: float) -> None:
        self.system.model.failing = True
        self.note(f"model endpoint: 500 for {seconds:g} s")
        await asyncio.sleep(seconds)
        self.system.model.failing = False
        self.note(f"model endpoint: back ({self.system.model.refused} requests refused)")

    async def kill_worker(self, replace_after: float) -> None:
        """Kill a worker in the middle of its work: the model is slow for a moment, so the
        workers hold messages unacknowledged."""
        s = self.system
        s.model.delay = 1.0
        in_hand = 0

        async def busy() -> bool:
            nonlocal in_hand
            in_hand = await s.nats.ack_pending(
                Stream.CONVERSATIONS.value, Durable.ROUTER_INBOUND.value
            )
            return in_hand >= IN_HAND

        try:
            await until(busy, timeout=10, what=f"{IN_HAND} messages in the workers' hands")
            victim = s.workers.pop(0)
            victim.kill()
        finally:
            s.model.delay = 0.0
        s.retired.append(victim)
        self.note(f"kill -9 {victim.name}; the workers held {in_hand} messages unacknowledged")
        await asyncio.sleep(replace_after)
        # A replacement, as a supervisor would start (and start again should it exit);
        # meanwhile the other worker carries on.
        replacement = s.worker(f"{victim.name}b", victim.env["NATS_URL"])
        s.workers.append(replacement)
        for _ in range(START_TRIES):
            replacement.start()
            try:
                await replacement.wait_started()
            except HarnessError:
                if replacement.alive:
                    raise
                why = replacement.last_line()
                self.note(f"{replacement.name} exited at start ({why}); starting it again")
                await asyncio.sleep(1.0)
            else:
                self.note(f"{replacement.name} started in its place")
                return
        raise HarnessError(f"{replacement.name} did not start:\n{replacement.tail()}")

    async def kill_nats_leader(self, restart_after: float) -> None:
        s = self.system
        index = await s.nats.stream_leader(Stream.CONVERSATIONS.value)
        node = s.nats.nodes[index]
        node.kill()
        self.note(f"kill -9 nats-server {node.name} (leader of {Stream.CONVERSATIONS.value})")
        await asyncio.sleep(restart_after)
        s.nats.restart(index)
        self.note(f"nats-server {node.name} restarted")

    async def restart_postgres(self, down_for: float) -> None:
        """Restart PostgreSQL while SMS replies are on their way to a slow Twilio."""
        twilio = self.system.twilio
        twilio.latency = 1.0
        try:
            await until(
                lambda: twilio.in_flight >= IN_FLIGHT,
                timeout=10,
                what=f"{IN_FLIGHT} sends in flight at Twilio",
                every=0.02,
            )
            sending = twilio.in_flight
            self.note(f"PostgreSQL: fast shutdown, {sending} SMS on their way to Twilio")
            await asyncio.to_thread(self.system.pg.restart, down_for)
        finally:
            twilio.latency = TWILIO_LATENCY
        self.note(f"PostgreSQL: started again after {down_for:g} s")
        await self.system.pg.wait_ready()
        self.note("PostgreSQL: accepting connections again")

    async def at(self, offset: float, fault: Awaitable[None]) -> None:
        await asyncio.sleep(max(0.0, self.started + offset - time.monotonic()))
        await fault


# ---- the run ----


async def drive(system: System, ledger: Ledger, faults: Faults) -> float:
    """Open the web chat sessions, then send MESSAGES at RATE while the faults happen.
    Returns how long the sending took."""
    rng = random.Random(7)
    texts = questions()
    phones = [f"+35840{1000000 + i:07d}" for i in range(SMS_RESIDENTS)]
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=10, limits=limits) as http:
        sessions: list[str] = []
        for _ in range(WEB_SESSIONS // 20):
            created = await asyncio.gather(*(http.post("/api/chat/sessions") for _ in range(20)))
            for r in created:
                assert r.status_code == 201, r.text
                sessions.append(r.json()["session_id"])
        faults.started = time.monotonic()
        schedule = [
            faults.at(8, faults.provider_burst(40)),
            faults.at(14, faults.model_outage(8)),
            faults.at(26, faults.kill_worker(replace_after=12)),
            faults.at(34, faults.kill_nats_leader(restart_after=12)),
            faults.at(56, faults.restart_postgres(down_for=2.0)),
            faults.at(64, faults.provider_burst(30)),
        ]
        tasks = [asyncio.create_task(f) for f in schedule]
        try:
            started = time.monotonic()
            for i in range(MESSAGES):
                await asyncio.sleep(max(0.0, started + i / RATE - time.monotonic()))
                question = rng.choice(texts)
                if rng.random() < SMS_SHARE:
                    send = post_sms(http, ledger, rng.choice(phones), question)
                else:
                    send = post_web(http, ledger, rng.choice(sessions), question, f"fault-{i}")
                tasks.append(asyncio.create_task(send))
            await asyncio.gather(*tasks)
            return time.monotonic() - started
        finally:
            # After a failure: nothing left running behind the test.
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def scalar(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def settled(system: System, accepted: int) -> bool:
    """Every accepted message decided, and every SMS reply sent or given up on."""
    try:
        decided = await scalar(system.engine, "SELECT count(*) FROM decision")
        pending = await scalar(
            system.engine,
            "SELECT count(*) FROM message WHERE role <> 'resident' AND channel = 'sms' "
            "AND status IN ('pending', 'queued')",
        )
    except Exception:  # the database was restarting: ask again
        return False
    return decided >= accepted and pending == 0


async def rows(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


async def unsettled(system: System, accepted: int) -> str:
    """What is left when the system does not settle: the messages without a decision, the
    SMS replies not sent, and where the bus has them (a backlog, or stuck)."""
    now = utcnow()
    lines = []
    try:
        undecided = await rows(
            system.engine,
            "SELECT m.id, m.channel, m.created_at FROM message m LEFT JOIN decision d "
            "ON d.message_id = m.id WHERE m.role = 'resident' AND d.message_id IS NULL "
            "ORDER BY m.created_at",
        )
        lines.append(
            f"{len(undecided)} of {accepted} accepted messages without a decision: "
            + ", ".join(
                f"{r.id} ({r.channel}, {(now - r.created_at).total_seconds():.0f} s old)"
                for r in undecided[:5]
            )
        )
        unsent = await rows(
            system.engine,
            "SELECT id, status, attempts, delivery_error, created_at FROM message "
            "WHERE role <> 'resident' AND channel = 'sms' AND status IN ('pending', 'queued') "
            "ORDER BY created_at",
        )
        lines.append(
            f"{len(unsent)} SMS replies not sent: "
            + ", ".join(
                f"{r.id} ({r.status}, {r.attempts} tries, {r.delivery_error}, "
                f"{(now - r.created_at).total_seconds():.0f} s old)"
                for r in unsent[:5]
            )
        )
    except Exception as e:  # the database is down: say so
        lines.append(f"database: {type(e).__name__}: {e}")
    for durable in (Durable.ROUTER_INBOUND.value, consumer_spec(Channel.SMS).durable):
        try:
            info = await system.nats.consumer_info(Stream.CONVERSATIONS.value, durable)
        except Exception as e:
            lines.append(f"consumer {durable}: {type(e).__name__}")
        else:
            lines.append(
                f"consumer {durable}: {info.num_pending} waiting, {info.num_ack_pending} "
                f"unacknowledged, {info.num_redelivered} redelivered"
            )
    return "\n".join(lines)


@pytest.mark.slow
async def test_every_message_gets_exactly_one_outcome_through_crashes_and_outages(
    tmp_path: Path,
) -> None:
    t0 = time.monotonic()
    async with running_system(tmp_path) as system:
        t_up = time.monotonic() - t0
        ledger = Ledger()
        faults = Faults(system)
        try:
            took = await drive(system, ledger, faults)
            t_settle = time.monotonic()
            await until(
                lambda: settled(system, ledger.accepted),
                timeout=SETTLE_DEADLINE,
                what=f"{ledger.accepted} accepted messages decided and their SMS replies sent",
                every=1.0,
            )
            settle = time.monotonic() - t_settle
        except HarnessError as e:
            left = await unsettled(system, ledger.accepted)
            raise AssertionError(f"{e}\n{left}\n{faults.log}\n{system.logs()}") from None
        context = "\n".join(["faults:", *faults.log, system.logs()])
        stats: Counter[str] = Counter()
        await check_outcomes(system, ledger, context, stats)
        await check_web_chats(system, ledger, context)
        # Every process still running drains and stops cleanly on SIGTERM.
        for p in [system.gateway, *system.workers]:
            assert p.stop() == 0, f"{p.name} did not stop cleanly\n{p.tail()}"
        print_summary(system, ledger, faults, stats, t_up=t_up, took=took, settle=settle)
        await check_sms_sent_once(system, context)


async def check_outcomes(system: System, ledger: Ledger, context: str, stats: Counter[str]) -> None:
    engine = system.engine
    assert not ledger.gave_up, f"clients gave up on {ledger.gave_up[:5]}\n{context}"
    assert not ledger.refused, f"the gateway refused {ledger.refused[:5]}\n{context}"
    assert ledger.accepted == MESSAGES

    # Stored exactly once: every accepted message, and nothing else.
    resident = await rows(
        engine, "SELECT id, dedup_key, channel FROM message WHERE role = 'resident'"
    )
    stored_web = {r.id for r in resident if r.channel == "web"}
    stored_sms = Counter(r.dedup_key.removeprefix("sms:") for r in resident if r.channel == "sms")
    assert stored_web == set(ledger.web), (
        f"web: {len(set(ledger.web) - stored_web)} accepted but not stored, "
        f"{len(stored_web - set(ledger.web))} stored but never accepted\n{context}"
    )
    assert set(stored_sms) == set(ledger.sms) and max(stored_sms.values()) == 1, (
        f"sms: {len(set(ledger.sms) - set(stored_sms))} accepted but not stored, "
        f"{len(set(stored_sms) - set(ledger.sms))} stored but never accepted\n{context}"
    )
    assert len(resident) == ledger.accepted

    # Decided exactly once (the decision's key is the message id).
    decisions = await rows(
        engine,
        "SELECT message_id, conversation_id, action, urgent, llm_fallback FROM decision",
    )
    decided = {d.message_id: d for d in decisions}
    undecided = {r.id for r in resident} - set(decided)
    assert not undecided, f"{len(undecided)} messages without a decision\n{context}"
    assert len(decisions) == len(resident)

    # Exactly one outcome each: one reply to it, or its conversation is on a person's
    # ticket (a handoff: its notice and the ticket; held: the ticket, and the emergency
    # guidance when urgent); never two replies.
    replies = Counter(
        r.in_reply_to
        for r in await rows(engine, "SELECT in_reply_to FROM message WHERE in_reply_to IS NOT NULL")
    )
    doubled = [m for m, n in replies.items() if n > 1]
    assert not doubled, f"{len(doubled)} messages answered more than once\n{context}"
    tickets = Counter(
        r.conversation_id
        for r in await rows(
            engine,
            "SELECT conversation_id FROM ticket WHERE status IN ('open', 'claimed', 'waiting')",
        )
    )
    wrong: list[str] = []
    for message_id, d in decided.items():
        replied = replies.get(message_id, 0)
        on_ticket = tickets[d.conversation_id] > 0
        match d.action:
            case "answer" | "clarify":
                ok = replied == 1
            case "handoff":
                ok = replied == 1 and on_ticket
            case "hold":
                ok = on_ticket and replied == (1 if d.urgent else 0)
            case _:
                ok = False
        if not ok:
            wrong.append(f"{message_id}: {d.action}, {replied} replies, ticket: {on_ticket}")
    assert not wrong, f"{len(wrong)} messages without their one outcome: {wrong[:5]}\n{context}"
    stats.update(Counter(d.action for d in decisions))
    stats.update(
        f"model fallback: {d.llm_fallback}" for d in decisions if d.llm_fallback is not None
    )
    # A conversation on a person's ticket is the person's: no worker wrote the AI back
    # over it, and the AI answered nothing in it after the handoff.
    ai_owned = await rows(
        engine,
        "SELECT c.id FROM conversation c JOIN ticket t ON t.conversation_id = c.id "
        "WHERE t.status IN ('open', 'claimed', 'waiting') AND c.owner <> 'human'",
    )
    assert not ai_owned, f"{len(ai_owned)} ticketed conversations owned by the AI\n{context}"
    after_handoff = await rows(
        engine,
        "SELECT m.id FROM message m JOIN ticket t ON t.conversation_id = m.conversation_id "
        "WHERE m.role = 'ai' AND m.created_at > t.created_at AND t.resolved_at IS NULL",
    )
    assert not after_handoff, f"{len(after_handoff)} AI answers after a handoff\n{context}"
    stats["tickets"] = sum(tickets.values())
    stats["conversations with 2+ tickets"] = sum(n > 1 for n in tickets.values())

    # Nothing set aside: no dead letters (poison messages, undeliverable replies).
    dead = await rows(engine, "SELECT stream, subject, error FROM dead_letter")
    assert not dead, f"dead letters: {dead[:5]}\n{context}"

    # SMS: each reply reached Twilio once, and every one due went out despite the 500s.
    sms_replies = await rows(
        engine,
        "SELECT m.id, m.status, m.provider_message_id, c.address FROM message m "
        "JOIN conversation c ON c.id = m.conversation_id "
        "WHERE m.role <> 'resident' AND m.channel = 'sms'",
    )
    unsent = [r for r in sms_replies if r.status != "sent"]
    assert not unsent, f"{len(unsent)} SMS replies not sent: {unsent[:5]}\n{context}"
    twilio = system.twilio
    assert twilio.failures_left == 0, "the Twilio bursts were not all used"
    sent_ids = Counter(r.provider_message_id for r in sms_replies)
    assert set(sent_ids) <= set(twilio.sids) and max(sent_ids.values()) == 1
    stats["SMS replies"] = len(sms_replies)


async def check_web_chats(system: System, ledger: Ledger, context: str) -> None:
    """What each resident sees in their chat: every message they sent, once, and the
    replies to them (none twice, none missing: as many as the database has)."""
    replies = {
        r.address.removeprefix("web:"): r.n
        for r in await rows(
            system.engine,
            "SELECT c.address, count(*) AS n FROM message m "
            "JOIN conversation c ON c.id = m.conversation_id "
            "WHERE m.role <> 'resident' AND m.channel = 'web' GROUP BY c.address",
        )
    }
    sent = Counter(ledger.web.values())
    sessions = sorted(sent)
    views: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=10) as http:
        for i in range(0, len(sessions), 20):
            views += await asyncio.gather(
                *(http.get(f"/api/chat/sessions/{sid}/messages") for sid in sessions[i : i + 20])
            )
    wrong = []
    for sid, view in zip(sessions, views, strict=True):
        assert view.status_code == 200, view.text
        roles = Counter(m["role"] for m in view.json())
        mine = roles.pop("resident", 0)
        if mine != sent[sid] or sum(roles.values()) != replies.get(sid, 0):
            wrong.append(f"{sid}: sent {sent[sid]}, shown {mine}; replies shown {dict(roles)}")
    assert not wrong, f"{len(wrong)} web chats show something else: {wrong[:3]}\n{context}"


async def check_sms_sent_once(system: System, context: str) -> None:
    """Each SMS reply has its own accepted send (checked above); any send beyond those is
    a reply sent twice. Per phone number, to show whose."""
    sms_replies = await rows(
        system.engine,
        "SELECT c.address FROM message m JOIN conversation c ON c.id = m.conversation_id "
        "WHERE m.role <> 'resident' AND m.channel = 'sms'",
    )
    sent = Counter(form["To"] for form in system.twilio.sids.values())
    due = Counter(r.address.removeprefix("sms:") for r in sms_replies)
    doubled = {phone: f"{n} sent, {due[phone]} due" for phone, n in sent.items() if n != due[phone]}
    if doubled:
        raise DoubledDelivery(
            f"{sum(sent.values()) - sum(due.values())} SMS replies sent twice (per phone: "
            f"{dict(list(doubled.items())[:5])})\n{context}"
        )


def windows(times: list[float], origin: float) -> str:
    """Seconds (from ``origin``) with failures, as runs: "34-41 s (600), 56 s (3)"."""
    seconds = Counter(int(t - origin) for t in times)
    runs: list[list[int]] = []
    for second in sorted(seconds):
        if runs and second - runs[-1][-1] <= 1:
            runs[-1].append(second)
        else:
            runs.append([second])
    return (
        ", ".join(
            (f"{r[0]}-{r[-1]} s" if len(r) > 1 else f"{r[0]} s")
            + f" ({sum(seconds[x] for x in r)})"
            for r in runs
        )
        or "none"
    )


def print_summary(
    system: System,
    ledger: Ledger,
    faults: Faults,
    stats: Counter[str],
    *,
    t_up: float,
    took: float,
    settle: float,
) -> None:
    tw, model = system.twilio, system.model
    print(
        "\n".join(
            [
                "",
                f"fault test: {ledger.accepted} messages ({len(ledger.web)} web chat, "
                f"{len(ledger.sms)} SMS) in {took:.1f} s, settled {settle:.1f} s later "
                f"(start-up {t_up:.1f} s)",
                f"  outcomes: {dict(stats)}",
                f"  client tries by answer: {dict(ledger.answers)}; failed tries "
                f"in: {windows(ledger.failed_at, faults.started)}",
                f"  model endpoint: {model.answered} answered, {model.refused} refused (500)",
                f"  Twilio: {len(tw.sids)} SMS accepted, {tw.refused} refused (500), "
                f"{tw.calls} calls",
                "  faults:",
                *(f"    {line}" for line in faults.log),
            ]
        ),
        flush=True,
    )


# ---- two messages of one conversation close together ----


def sms_from(text: str, sid: str) -> MessageReceived:
    return MessageReceived(
        channel=Channel.SMS,
        provider_message_id=sid,
        sender=Address(channel=Channel.SMS, value="+358401234567"),
        text=text,
    )


async def all_decided(svc: Services, n: int) -> bool:
    return len(await harness.rows(svc, "decision")) >= n


async def test_a_message_held_after_a_handoff_in_its_batch_is_on_that_ticket(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    settings = harness.make_settings(tmp_path, nats_url, sqlite_url)
    async with harness.services(settings) as svc:
        # Both wait in the stream before the worker starts: it takes them in one batch.
        await svc.publisher.publish(sms_from("Haluan puhua ihmisen kanssa", "SM1"))
        await svc.publisher.publish(
            sms_from("Isäni kaatui portaissa eikä hengitä, apua heti!", "SM2")
        )
        async with harness.worker(svc, harness.answering()):
            await harness.eventually(lambda: all_decided(svc, 2), what="both messages decided")
        decisions = {d["action"]: d for d in await harness.rows(svc, "decision")}
        (ticket,) = await harness.rows(svc, "ticket")
    assert set(decisions) == {"handoff", "hold"}
    assert decisions["handoff"]["ticket_id"] == ticket["id"]
    assert decisions["hold"]["urgent"]
    assert decisions["hold"]["ticket_id"] == ticket["id"], "the held message is on no ticket"
    assert ticket["urgent"], "an emergency written right after the handoff left it not urgent"


async def test_two_workers_open_one_ticket_for_one_conversation(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    settings = harness.make_settings(tmp_path, nats_url, sqlite_url, agent_timeout=5.0)

    async def slow(request: TriageRequest) -> Assessment:
        await asyncio.sleep(1.0)
        return harness.library_answer(request)

    async with harness.services(settings) as one, harness.services(settings) as two:
        async with (
            harness.worker(one, harness.ScriptedAgent(slow)),
            harness.worker(two, harness.ScriptedAgent(slow)),
        ):
            await one.publisher.publish(sms_from("Haluan puhua ihmisen kanssa", "SM1"))
            # The first worker is busy with the first message: the other takes the second.
            await asyncio.sleep(0.2)
            await one.publisher.publish(sms_from("Haluan puhua ihmisen kanssa nyt heti", "SM2"))
            await harness.eventually(lambda: all_decided(one, 2), what="both messages decided")
        tickets = await harness.rows(one, "ticket")
    assert len(tickets) == 1, f"{len(tickets)} tickets for one conversation"
