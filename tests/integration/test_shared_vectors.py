"""Passage vectors shared through the database (real SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from agents.base import Document
from agents.knowledge.shared_vectors import DatabaseVectors
from agents.knowledge.store import read_docs_jsonl
from agents.offline import OfflineAgent
from agents.vectors import DIM
from router.app import shared_vectors
from router.db import create_engine, create_schema
from router.settings import DEMO_KB, Settings
from tests.fakes.embedder import CountingEmbedder

SEED = DEMO_KB / "ptv-general-descriptions.docs.jsonl"


async def schema(url: str) -> None:
    engine = create_engine(url)
    await create_schema(engine)
    await engine.dispose()


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


async def test_vectors_stored_by_one_model_are_read_back_by_key(database_url: str) -> None:
    await schema(database_url)
    store = DatabaseVectors(database_url, "model-a")
    other = DatabaseVectors(database_url, "model-b")
    try:
        store.store({"k1": unit(1), "k2": unit(2)})
        store.store({"k2": unit(2), "k3": unit(3)})  # another worker's copy of k2: no error
        got = store.load(["k1", "k3", "missing"])
        assert sorted(got) == ["k1", "k3"]
        np.testing.assert_array_equal(got["k3"], unit(3))
        assert other.load(["k1", "k2", "k3"]) == {}  # vectors of models never mix
    finally:
        store.close()
        other.close()


def small_kb() -> list[Document]:
    return read_docs_jsonl(SEED.read_text("utf-8").splitlines())[:6]


def agent(docs: list[Document], folder: Path, url: str, embedder: CountingEmbedder) -> OfflineAgent:
    return OfflineAgent(
        docs,
        vector_cache=folder,
        embedder=lambda: embedder,
        shared_vectors=lambda model: DatabaseVectors(url, model),
    )


@pytest.mark.postgres
async def test_a_new_worker_takes_the_vectors_another_computed_from_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    await schema(postgres_url)
    docs = small_kb()
    first_embedder = CountingEmbedder()
    first = agent(docs, tmp_path / "pod-1", postgres_url, first_embedder)
    try:
        assert first.wait_ready(60)
        entries = len(first.passages) + len(first.titles)
        assert first_embedder.passages == entries
    finally:
        first.close()
    # A new pod: its data folder is empty, the database holds the vectors.
    second_embedder = CountingEmbedder()
    second = agent(docs, tmp_path / "pod-2", postgres_url, second_embedder)
    try:
        assert second.ready_fraction == 1.0  # loaded before any thread ran
        assert second.wait_ready(60)
        assert second_embedder.passages == 0
        assert second.dense is not None and first.dense is not None
        np.testing.assert_array_equal(second.dense.vectors, first.dense.vectors)
    finally:
        second.close()


async def test_without_the_database_a_worker_keeps_and_uses_its_own_vectors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on the port: sharing fails, the file cache works as ever."""
    docs = small_kb()
    unreachable = "postgresql://postgres@127.0.0.1:9/none"
    embedder = CountingEmbedder()
    with caplog.at_level(logging.WARNING):
        first = agent(docs, tmp_path / "pod", unreachable, embedder)
        try:
            assert first.wait_ready(60)
            computed = embedder.passages
            assert computed == len(first.passages) + len(first.titles)
        finally:
            first.close()
        again_embedder = CountingEmbedder()
        again = agent(docs, tmp_path / "pod", unreachable, again_embedder)
        try:
            assert again.wait_ready(60)
            assert again_embedder.passages == 0  # from the worker's own file
        finally:
            again.close()
    assert "shared passage vectors unavailable" in caplog.text
    assert "could not share" in caplog.text


def test_only_postgresql_deployments_share_vectors_in_the_database(tmp_path: Path) -> None:
    assert shared_vectors(Settings(data_dir=tmp_path)) is None  # SQLite in the data folder
    on_postgres = shared_vectors(
        Settings(data_dir=tmp_path, database_url="postgresql://u@db.example:5432/neuvonta")
    )
    assert on_postgres is not None


async def test_a_sync_drops_the_vectors_only_replaced_and_removed_pages_had(
    database_url: str,
) -> None:
    from agents.knowledge.ingest import sync
    from agents.knowledge.store import KnowledgeStore
    from agents.passages import vector_keys

    await schema(database_url)
    docs = small_kb()
    engine = create_engine(database_url)
    vectors = DatabaseVectors(database_url, "model-a")
    try:
        kb = KnowledgeStore(engine)
        await sync(kb, "site", docs)
        before = vector_keys(docs)
        vectors.store({k: unit(i) for i, k in enumerate(sorted(before))})

        # The next crawl: the first page's Finnish text changed, the second page is gone.
        changed = docs[0].model_copy(update={"text": {**docs[0].text, "fi": "Uusi teksti."}})
        now = [changed, *docs[2:]]
        summary = await sync(kb, "site", now)

        assert (summary.changed, summary.removed) == (1, 1)
        kept = vector_keys(now)
        gone = before - kept
        assert summary.stale_vectors == gone
        assert vector_keys([docs[1]]) <= gone  # every vector of the removed page
        assert vector_keys([docs[0]]) - vector_keys([changed]) <= gone  # the old text's
        assert set(vectors.load(sorted(before))) == before & kept
        # Unchanged parts of the changed page (its titles, its Swedish text) keep theirs.
        assert vector_keys([docs[0]]) & vector_keys([changed]) <= set(vectors.load(sorted(kept)))
    finally:
        vectors.close()
        await engine.dispose()
