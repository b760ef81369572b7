"""Live fan-out of events to connected browsers (Server-Sent Events).

Every web process subscribes to the reply subjects on core NATS, so a browser gets its
messages whichever process it is connected to. A slow browser loses live events, never
messages: it reloads the conversation from the API when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

QUEUE_SIZE = 100


class Hub:
    """Topic → connected listeners. Topics are chat session ids or console queue names."""

    def __init__(self) -> None:
        self._listeners: defaultdict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        for q in self._listeners.get(topic, ()):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(payload)

    @contextlib.asynccontextmanager
    async def listen(self, *topics: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        for t in topics:
            self._listeners[t].add(q)
        try:
            yield q
        finally:
            for t in topics:
                self._listeners[t].discard(q)
                if not self._listeners[t]:
                    del self._listeners[t]

    @property
    def idle(self) -> bool:
        """No browser is connected to this process."""
        return not self._listeners

    def listeners(self, topic: str) -> int:
        return len(self._listeners.get(topic, ()))
