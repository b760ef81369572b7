"""Consumers on a real nats-server that is not ready yet when a process starts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import nats
from nats.aio.msg import Msg

from router.bus import ConsumerSpec, ensure_streams, run_batches
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
