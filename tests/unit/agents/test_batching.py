"""The dynamic batch runner: real threads, real event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from agents.batching import BatchRunner


async def test_concurrent_calls_are_run_together_and_each_gets_its_own_result() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def double(items: Sequence[int]) -> list[int | Exception]:
        gate.wait(5)  # the first call holds the thread while the rest queue up
        sizes.append(len(items))
        return [2 * i for i in items]

    runner: BatchRunner[int, int] = BatchRunner(double, max_batch=16)
    first = asyncio.create_task(runner.submit(0))
    await asyncio.sleep(0.05)
    rest = [asyncio.create_task(runner.submit(i)) for i in range(1, 11)]
    await asyncio.sleep(0.05)
    gate.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [2 * i for i in range(1, 11)]
    assert sizes == [1, 10]


async def test_one_failing_item_fails_alone_and_a_crashing_batch_fails_all() -> None:
    def picky(items: Sequence[str]) -> list[str | Exception]:
        if "crash" in items:
            raise RuntimeError("engine down")
        return [ValueError(i) if i == "bad" else i.upper() for i in items]

    runner: BatchRunner[str, str] = BatchRunner(picky)
    assert await runner.submit("ok") == "OK"
    with pytest.raises(ValueError, match="bad"):
        await runner.submit("bad")
    with pytest.raises(RuntimeError, match="engine down"):
        await runner.submit("crash")
    # The thread survives failures.
    assert await runner.submit("again") == "AGAIN"


async def test_a_caller_that_gives_up_does_not_break_the_runner() -> None:
    release = threading.Event()

    def slow(items: Sequence[int]) -> list[int | Exception]:
        release.wait(5)
        return list(items)

    runner: BatchRunner[int, int] = BatchRunner(slow)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(runner.submit(1), 0.05)
    release.set()
    assert await runner.submit(2) == 2
