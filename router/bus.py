"""NATS JetStream plumbing: streams, publishing events, and batch consumption.

The router's hot consumer works on batches with nats-py's pull subscription directly:
one database transaction per batch, acks after the commit. FastStream's batch subscriber
waits to fill a batch (latency at low load); this loop takes what is there at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from router.events import DeadLettered, Event
from router.subjects import STREAM_SUBJECTS, Stream, msg_id_for, subject_for

log = logging.getLogger(__name__)

T = TypeVar("T")

DAY = 24 * 3600.0

# Seconds a starting process waits for JetStream to answer.
STARTUP_PATIENCE = 60.0


async def patiently(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    patience: float = STARTUP_PATIENCE,
    pause: float = 1.0,
) -> T:
    """``attempt()`` until JetStream answers: a cluster electing leaders (just started,
    or a node just lost) answers API requests with timeouts or 503s for seconds."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return await attempt()
        except (NatsError, TimeoutError) as e:
            if time.monotonic() > deadline:
                raise
            log.warning("JetStream not ready for %s (%s); trying again", what, type(e).__name__)
            await asyncio.sleep(pause)


# How long each stream keeps an event (seconds).
STREAM_RETENTION: dict[Stream, float] = {
    Stream.CONVERSATIONS: 14 * DAY,
    Stream.HANDOFF: 14 * DAY,
    Stream.DEADLETTER: 90 * DAY,
}


def stream_ages(longest: float | None = None) -> dict[Stream, float]:
    """Seconds each stream keeps an event: its own ``STREAM_RETENTION``, or ``longest`` (the
    residents' data retention) where that is shorter."""
    return {s: age if longest is None else min(age, longest) for s, age in STREAM_RETENTION.items()}


def stream_configs(replicas: int = 1, longest: float | None = None) -> list[StreamConfig]:
    ages = stream_ages(longest)
    return [
        StreamConfig(
            name=stream.value,
            subjects=subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=replicas,
            max_age=ages[stream],
            duplicate_window=120.0,
        )
        for stream, subjects in STREAM_SUBJECTS.items()
    ]


async def ensure_streams(
    js: JetStreamContext, replicas: int = 1, longest: float | None = None
) -> None:
    """Create the streams, or bring an existing one's configuration up to date."""
    for config in stream_configs(replicas, longest):
        assert config.name is not None
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config=config)
            continue
        try:
            await js.update_stream(config=config)
        except BadRequestError as e:  # e.g. replicas cannot change on this server
            log.warning("stream %s keeps its configuration: %s", config.name, e.description)


async def erase_events(
    js: JetStreamContext, needles: Sequence[str], *, batch: int = 256
) -> dict[str, int]:
    """Erase (overwrite, then remove) every stored event that names one of ``needles``: a
    resident's addresses and conversation ids, so that an erasure request leaves no copies
    in the streams until they expire. Returns the number erased per stream.

    A needle is matched as a JSON string, also inside another event's escaped payload (a
    dead letter carries the event it could not process), never as part of a longer value.
    """
    quoted = [json.dumps(n, ensure_ascii=False) for n in needles]  # as the events spell them
    marks = [m.encode() for q in quoted for m in (q, json.dumps(q, ensure_ascii=False)[1:-1])]
    erased: dict[str, int] = {}
    for stream, subjects in STREAM_SUBJECTS.items():
        erased[stream.value] = 0
        if not (await js.stream_info(stream.value)).state.messages:
            continue
        scan = ConsumerConfig(
            filter_subjects=subjects,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=30.0,  # gone by itself should the deletion below fail
            mem_storage=True,
        )
        sub = await js.pull_subscribe("", stream=stream.value, config=scan)
        try:
            while True:
                try:
                    msgs = await sub.fetch(batch, timeout=1.0)
                except (TimeoutError, NatsTimeoutError):
                    break  # nothing more (the last ones may have expired meanwhile)
                for m in msgs:
                    if any(mark in m.data for mark in marks):
                        await js.delete_msg(stream.value, m.metadata.sequence.stream)
                        erased[stream.value] += 1
                if not msgs[-1].metadata.num_pending:
                    break
        finally:
            await sub.unsubscribe()
            with contextlib.suppress(NatsError, TimeoutError):
                await js.delete_consumer(stream.value, str(scan.name))  # named on creation
    return erased


# Live configuration (the handoff thresholds): read and watched by every worker.
CONFIG_BUCKET = "neuvonta-config"
CONFIG_HISTORY = 16


async def config_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The configuration KV bucket; created on first use (by whichever process is first)."""
    try:
        return await js.key_value(CONFIG_BUCKET)
    except BucketNotFoundError:
        pass
    try:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=CONFIG_BUCKET,
                description="Neuvonta live configuration (the database keeps the history)",
                history=CONFIG_HISTORY,
                storage=StorageType.FILE,
                replicas=replicas,
            )
        )
    except BadRequestError:  # another process created it meanwhile
        return await js.key_value(CONFIG_BUCKET)


class EventPublisher:
    def __init__(self, js: JetStreamContext, timeout: float = 5.0) -> None:
        self.js = js
        self.timeout = timeout

    async def publish(self, event: Event) -> None:
        await self.js.publish(
            subject_for(event),
            event.to_json(),
            timeout=self.timeout,
            headers={"Nats-Msg-Id": msg_id_for(event)},
        )

    async def publish_all(self, events: Iterable[Event]) -> None:
        await asyncio.gather(*(self.publish(e) for e in events))


async def fetch_batch(sub: JetStreamContext.PullSubscription, size: int, wait: float) -> list[Msg]:
    """Wait up to ``wait`` s for one message, then take the ones already waiting, up to ``size``.

    A plain ``fetch(size)`` lingers until the batch is full or the timeout passes, which
    adds its whole timeout to the latency of a lone message at low load. The first
    message says how many more are pending, so the second fetch asks only for those and
    returns as soon as they arrive, however busy the event loop is.
    """
    try:
        first = await sub.fetch(1, timeout=wait)
    except (TimeoutError, NatsTimeoutError):
        return []
    pending = min(size - 1, first[-1].metadata.num_pending or 0)
    if pending <= 0:
        return first
    try:
        rest = await sub.fetch(pending, timeout=REST_TIMEOUT)
    except (TimeoutError, NatsTimeoutError):
        # Another worker of the same consumer took them.
        rest = []
    return first + rest


# How long to wait for messages the server said were pending (others may have taken them).
REST_TIMEOUT = 0.25


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    stream: Stream
    durable: str
    subject: str
    batch: int = 128
    ack_wait: float = 30.0
    max_ack_pending: int = 4096
    # Batches handled at once: the next is fetched and taken in while the last commits and
    # publishes, so a consumer waits on neither. Only for handlers that are safe with
    # overlapping batches (as with several workers on one consumer).
    in_flight: int = 1

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=self.subject,
            ack_wait=self.ack_wait,
            # Unlimited on the server: the handler decides when a message is poison.
            max_deliver=-1,
            max_ack_pending=self.max_ack_pending,
        )


async def dead_letter(publisher: EventPublisher, m: Msg, stream: Stream, error: str) -> bool:
    """Set ``m`` aside: publish it as a ``DeadLettered`` event (people see it) and ``term``
    it. False when the dead letter could not be published: the caller naks instead."""
    meta = m.metadata
    event = DeadLettered(
        stream=stream.value,
        stream_seq=meta.sequence.stream,
        subject=m.subject,
        error=error[:2000],
        deliveries=meta.num_delivered,
        payload=m.data.decode("utf-8", errors="replace"),
    )
    try:
        await publisher.publish(event)
    except Exception:
        log.warning("dead-letter publish failed; stream message %s waits", meta.sequence.stream)
        return False
    log.error("dead-lettered stream message %s: %s", meta.sequence.stream, error[:200])
    await m.term()
    return True


BatchHandler = Callable[[Sequence[Msg]], Awaitable[None]]


async def run_batches(
    js: JetStreamContext,
    spec: ConsumerSpec,
    handle: BatchHandler,
    stopping: asyncio.Event,
    *,
    ready: asyncio.Event | None = None,
) -> None:
    """Consume until ``stopping`` is set; the batches in hand are always finished first."""
    sub = await patiently(
        f"consumer {spec.durable}",
        lambda: js.pull_subscribe(
            spec.subject, durable=spec.durable, stream=spec.stream.value, config=spec.config()
        ),
    )
    if ready is not None:
        ready.set()
    slots = asyncio.Semaphore(spec.in_flight)
    handling: set[asyncio.Future[None]] = set()

    def done(task: asyncio.Future[None]) -> None:
        handling.discard(task)
        slots.release()
        if not task.cancelled() and (e := task.exception()) is not None:
            # A handler settles its own messages; what escapes it comes back after ack_wait.
            log.error("batch of %s failed", spec.durable, exc_info=e)

    try:
        while not stopping.is_set():
            await slots.acquire()
            if stopping.is_set():  # set while every slot was busy
                break
            try:
                msgs = await fetch_batch(sub, spec.batch, wait=0.5)
            except Exception:
                slots.release()
                # Connection trouble: nats-py reconnects; unacked messages come back.
                log.warning("fetch from %s failed; retrying", spec.durable, exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if not msgs:
                slots.release()
                continue
            task = asyncio.ensure_future(handle(msgs))
            handling.add(task)
            task.add_done_callback(done)
        # Stopping: the batches in hand finish (the gather below waits for them).
    except asyncio.CancelledError:
        # Cancelled: so are the batches in hand (unacked, they come back after ack_wait).
        for batch in handling:
            batch.cancel()
        raise
    finally:
        await asyncio.gather(*handling, return_exceptions=True)
        try:
            await sub.unsubscribe()
        except Exception:  # the connection may already be closed at shutdown
            log.debug("unsubscribe of %s failed", spec.durable, exc_info=True)
