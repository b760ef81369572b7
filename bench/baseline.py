"""The yardstick: a bare FastStream JetStream consume-and-publish loop.

A worker process pulls typed events from a stream and publishes each to another subject
(awaiting the PubAck), with explicit acks: what any JetStream service built on FastStream
pays per message before doing any work of its own.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub

from router.embedded import EmbeddedNats
from router.events import Address, Channel, MessageReceived

STREAM = "BENCH"


def event(i: int) -> MessageReceived:
    return MessageReceived(
        channel=Channel.WEB,
        provider_message_id=f"b{i}",
        sender=Address(channel=Channel.WEB, value=f"session-{i % 200}"),
        text="Milloin kirjasto on auki ja miten saan kirjastokortin?",
    )


async def serve_worker(url: str) -> None:
    broker = NatsBroker(url, log_level=logging.DEBUG)

    @broker.subscriber(
        "bench.in",
        stream=JStream(STREAM, declare=False),
        durable="bench",
        pull_sub=PullSub(batch_size=100, timeout=0.5),
        ack_policy=AckPolicy.ACK,
    )
    async def handle(msg: MessageReceived) -> None:
        await broker.publish(msg, "bench.out", stream=STREAM)

    await broker.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def measure(messages: int = 5000) -> float:
    """Messages per second through the bare loop, on a nats-server of its own."""
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNats(Path(tmp)) as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(name=STREAM, subjects=["bench.>"])
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline", server.url],
            stdout=subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            await asyncio.to_thread(proc.stdout.readline)
            done = asyncio.Event()
            seen = 0

            async def out(_msg: object) -> None:
                nonlocal seen
                seen += 1
                if seen == messages:
                    done.set()

            await nc.subscribe("bench.out", cb=out)
            payloads = [event(i).to_json() for i in range(messages)]
            started = time.perf_counter()
            for start in range(0, messages, 500):
                await asyncio.gather(
                    *(js.publish("bench.in", p) for p in payloads[start : start + 500])
                )
            await asyncio.wait_for(done.wait(), timeout=120)
            elapsed = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(10)
            await nc.close()
    return messages / elapsed


if __name__ == "__main__":
    asyncio.run(serve_worker(sys.argv[1]))
