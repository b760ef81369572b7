"""Streams on a real nats-server: consumers starting before JetStream is ready, and erasing
a resident's events."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from router.bus import ConsumerSpec, EventPublisher, ensure_streams, erase_events, run_batches
from router.events import Address, Channel, DeadLettered, MessageReceived
from router.subjects import PREFIX, Stream


async def test_a_consumer_started_before_its_stream_exists_waits_and_then_consumes(
    nats_url: str,
) -> None:
    """A worker starting while the cluster is still electing leaders (or before any
    process created the streams) gets API errors for seconds: it must wait, not exit."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    got: list[bytes] = []

    async def handle(msgs: Sequence[Msg]) -> None:
        for m in msgs:
            got.append(m.data)
            await m.ack()

    spec = ConsumerSpec(
        stream=Stream.DEADLETTER, durable="startup-test", subject=f"{PREFIX}.deadletter.>", batch=8
    )
    stopping = asyncio.Event()
    ready = asyncio.Event()
    consumer = asyncio.create_task(run_batches(js, spec, handle, stopping, ready=ready))
    try:
        await asyncio.sleep(1.5)
        assert not consumer.done(), "the consumer gave up while JetStream was not ready"
        assert not ready.is_set()
        await ensure_streams(js)
        await asyncio.wait_for(ready.wait(), timeout=10)
        await js.publish(f"{PREFIX}.deadletter.test", b"kept")
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.05)
        assert got == [b"kept"]
    finally:
        stopping.set()
        await asyncio.wait_for(consumer, timeout=5)
        await nc.close()


async def test_a_stop_finishes_the_batches_in_hand_and_takes_no_more(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    started: list[bytes] = []
    release = asyncio.Event()

    async def handle(msgs: Sequence[Msg]) -> None:
        started.extend(m.data for m in msgs)
        await release.wait()
        for m in msgs:
            await m.ack()

    spec = ConsumerSpec(
        stream=Stream.DEADLETTER,
        durable="in-flight-test",
        subject=f"{PREFIX}.deadletter.>",
        batch=1,
        in_flight=2,
    )
    stopping = asyncio.Event()
    try:
        await ensure_streams(js)
        consumer = asyncio.create_task(run_batches(js, spec, handle, stopping))
        for n in range(3):
            await js.publish(f"{PREFIX}.deadletter.test", f"m{n}".encode())
        for _ in range(100):
            if len(started) == 2:
                break
            await asyncio.sleep(0.05)
        assert started == [b"m0", b"m1"]  # two batches in hand at once, the third waits
        stopping.set()
        release.set()
        await asyncio.wait_for(consumer, timeout=5)
        assert started == [b"m0", b"m1"]
        await nc.flush()  # the acks are fire-and-forget: the server has them after this
        info = await js.consumer_info(Stream.DEADLETTER.value, "in-flight-test")
        assert (info.num_ack_pending, info.num_pending) == (0, 1)
    finally:
        await nc.close()


async def test_erasing_a_resident_removes_their_events_from_every_stream_and_no_one_elses(
    nats_url: str,
) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        await ensure_streams(js)
        publisher = EventPublisher(js)

        def sms(number: str, n: int) -> MessageReceived:
            return MessageReceived(
                channel=Channel.SMS,
                provider_message_id=f"{number}-{n}",
                sender=Address(channel=Channel.SMS, value=number),
                text=f"viesti {n}",
            )

        mine = [sms("+358401111111", n) for n in range(3)]
        # A longer number that starts with mine: another resident.
        theirs = [sms("+3584011111119", n) for n in range(2)]
        await publisher.publish_all([*mine, *theirs])
        # A dead letter carries my event inside its payload (escaped JSON).
        await publisher.publish(
            DeadLettered(
                stream=Stream.CONVERSATIONS.value,
                stream_seq=1,
                subject="x",
                error="test",
                deliveries=5,
                payload=mine[0].to_json().decode(),
            )
        )
        erased = await erase_events(js, ["sms:+358401111111"])
        assert erased == {
            Stream.CONVERSATIONS.value: 3,
            Stream.HANDOFF.value: 0,
            Stream.DEADLETTER.value: 1,
        }
        left = await js.stream_info(Stream.CONVERSATIONS.value)
        assert left.state.messages == 2
        kept = [await js.get_msg(Stream.CONVERSATIONS.value, seq) for seq in (4, 5)]
        assert all(b"+3584011111119" in m.data for m in kept if m.data)
        for seq in (1, 2, 3):
            with pytest.raises(NotFoundError):
                await js.get_msg(Stream.CONVERSATIONS.value, seq)
        assert (await js.stream_info(Stream.DEADLETTER.value)).state.messages == 0
        # Nothing left to erase: a second request finds nothing.
        assert sum((await erase_events(js, ["sms:+358401111111"])).values()) == 0
        # The scans leave no consumers behind.
        for stream in Stream:
            assert (await js.stream_info(stream.value)).state.consumer_count == 0
    finally:
        await nc.close()


async def test_streams_keep_no_event_longer_than_the_residents_data_retention(
    nats_url: str, tmp_path: Path
) -> None:
    from tests.integration.harness import make_settings, services

    async def ages(**retention: int) -> dict[str, float]:
        settings = make_settings(
            tmp_path, nats_url, f"sqlite+aiosqlite:///{tmp_path / 'n.db'}", **retention
        )
        async with services(settings) as svc:
            js = svc.broker.connection.jetstream()
            return {s.value: (await js.stream_info(s.value)).config.max_age or 0 for s in Stream}

    day = 86_400.0
    defaults = await ages()
    assert defaults == {
        Stream.CONVERSATIONS.value: 14 * day,
        Stream.HANDOFF.value: 14 * day,
        Stream.DEADLETTER.value: 90 * day,
    }
    # Web chats kept 3 days: a running system's streams are shortened to 3 days at start.
    short = await ages(retention_web_days=3, retention_contact_days=365)
    assert set(short.values()) == {3 * day}
    # 0 is "keep": it does not count; 30 days shortens only the dead letters.
    assert await ages(retention_web_days=0, retention_contact_days=30) == {
        **defaults,
        Stream.DEADLETTER.value: 30 * day,
    }
