"""Run an expensive batch function in one thread for whatever calls have queued up.

Callers on an event loop submit one item each and await its result; the thread takes all
waiting items at once (dynamic batching). At low load a batch is one item and nothing
waits for company; under load the batch grows and the per-item cost falls.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _settle(future: asyncio.Future[R], result: R | Exception) -> None:
    if future.done():  # the caller gave up (timeout, cancellation)
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)


class BatchRunner(Generic[T, R]):
    def __init__(
        self,
        run: Callable[[Sequence[T]], Sequence[R | Exception]],
        *,
        max_batch: int = 16,
        name: str = "batch-runner",
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._name = name
        self._waiting: list[tuple[T, asyncio.Future[R], asyncio.AbstractEventLoop]] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        with self._wake:
            self._waiting.append((item, future, loop))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._wake.notify()
        return await future

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._waiting:
                    self._wake.wait()
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
            try:
                results: Sequence[R | Exception] = self._run([item for item, _, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for {len(batch)} items")
            except Exception as e:
                results = [e] * len(batch)
            for (_, future, loop), result in zip(batch, results, strict=True):
                with contextlib.suppress(RuntimeError):  # that event loop is closed
                    loop.call_soon_threadsafe(_settle, future, result)
