"""Passage vectors kept in the database beside the knowledge base, shared by all workers.

Each worker keeps its vectors in a file of its data folder (fast, and enough for one
machine); with a shared database a new worker pod — whose folder starts empty — takes the
vectors the others computed instead of embedding every page again (minutes of CPU).

The dense indexer is a thread and the database drivers are asynchronous, so the store runs
a private event loop with an engine of its own in a daemon thread, and the indexer calls it
synchronously.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import select

from agents.vectors import Matrix, VectorStore, wanted_vectors
from router.db import create_engine, insert_many_ignore
from router.tables import KbVectorRow

log = logging.getLogger(__name__)

T = TypeVar("T")

VECTORS = KbVectorRow.__table__  # type: ignore[attr-defined]
# Rows per INSERT: well under every database's bound-parameter limit.
_CHUNK = 500


class DatabaseVectors:
    """The ``kb_vector`` table as a synchronous ``VectorStore`` of one model."""

    def __init__(self, url: str, model_id: str, timeout: float = 60.0) -> None:
        self.model_id = model_id
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="kb-vectors-db", daemon=True
        )
        self._thread.start()
        self._engine = create_engine(url)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout)

    def load(self, keys: Sequence[str]) -> dict[str, Matrix]:
        async def read() -> list[Any]:
            async with self._engine.connect() as conn:
                rows = await conn.execute(
                    select(VECTORS.c.key, VECTORS.c.vector).where(VECTORS.c.model == self.model_id)
                )
                return list(rows.all())

        return wanted_vectors(self._call(read()), keys)

    def store(self, items: Mapping[str, Matrix]) -> None:
        rows = [
            {"model": self.model_id, "key": k, "vector": np.asarray(v, np.float32).tobytes()}
            for k, v in items.items()
        ]

        async def write() -> None:
            async with self._engine.begin() as conn:
                for start in range(0, len(rows), _CHUNK):
                    # Another worker may have stored the same vector meanwhile: equal anyway.
                    await insert_many_ignore(conn, VECTORS, rows[start : start + _CHUNK])

        if rows:
            self._call(write())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._engine.dispose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()


class LayeredVectors:
    """This worker's file first, the shared store for the rest; each gets what the other
    lacks at start, and new vectors go to both. The shared store failing costs only the
    sharing: the vectors stay in the file, and a worker without them computes them."""

    def __init__(self, local: VectorStore, shared: VectorStore) -> None:
        self.local = local
        self.shared = shared

    def load(self, keys: Sequence[str]) -> dict[str, Matrix]:
        found = self.local.load(keys)
        try:
            shared = self.shared.load(keys)
            if theirs := {k: v for k, v in shared.items() if k not in found}:
                self.local.store(theirs)
                found.update(theirs)
            if mine := {k: v for k, v in found.items() if k not in shared}:
                self.shared.store(mine)
        except Exception:
            log.warning("shared passage vectors unavailable; using this worker's", exc_info=True)
        return found

    def store(self, items: Mapping[str, Matrix]) -> None:
        self.local.store(items)
        try:
            self.shared.store(items)
        except Exception:
            log.warning("could not share %d passage vectors (kept in the file)", len(items))

    def close(self) -> None:
        self.local.close()
        self.shared.close()
