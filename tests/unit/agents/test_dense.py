"""Dense retrieval, the vector cache and the background indexer."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from agents.base import Document, TriageRequest
from agents.offline import OfflineAgent
from agents.vectors import E5Embedder, VectorCache
from handoff.queues import default_policy
from router.decide import Action, Situation, decide
from router.settings import DEMO_KB
from tests.fakes.embedder import CountingEmbedder

LIBRARY = "6d5b9dea-beb0-4458-b7f9-4d0bd982ccf7"
ASSISTANCE = "befe0d97-dad0-4832-b389-83bfe87d7002"
SUBSET = (LIBRARY, ASSISTANCE)


def finnish_only(doc: Document) -> Document:
    return doc.model_copy(update={"text": {"fi": doc.text["fi"]}, "title": {"fi": doc.title["fi"]}})


@pytest.fixture(scope="module")
def subset(demo_docs: list[Document]) -> list[Document]:
    """A small KB where the library service exists only in Finnish."""
    wanted = set(SUBSET)
    docs = [finnish_only(d) if d.id == LIBRARY else d for d in demo_docs if d.id in wanted]
    # Neighbours from other service classes (health, families) so ranking means something.
    others = [d for d in demo_docs if d.id not in wanted and set(d.departments) & {"P3", "P5"}]
    return docs + others[:12]


@pytest.fixture(scope="module")
def vector_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vectors")


@pytest.fixture(scope="module")
def dense_agent(subset: list[Document], vector_dir: Path) -> OfflineAgent:
    agent = OfflineAgent.from_documents(
        subset,
        doc_url_template="http://127.0.0.1:8080/kb/{doc_id}?lang={lang}",
        vector_cache=vector_dir,
    )
    assert agent.wait_ready(120)
    assert agent.ready_fraction == 1.0
    return agent


@pytest.mark.parametrize(
    ("text", "reply"),
    [("Hur får jag ett lånekort till biblioteket?", "sv"), ("Where can I borrow books?", "en")],
)
async def test_question_finds_a_text_that_exists_only_in_finnish(
    dense_agent: OfflineAgent, text: str, reply: str
) -> None:
    a = await dense_agent.triage(TriageRequest(text=text, channel="web"))
    assert a.reply_language == reply
    assert a.ranked_doc_ids[0] == LIBRARY
    assert a.answer_language == "fi"
    assert a.sources[0].url == f"http://127.0.0.1:8080/kb/{LIBRARY}?lang=fi"
    assert a.sources[0].title == "Kirjastopalvelut"
    assert "dense_top" in a.scores


async def test_swedish_question_gets_the_swedish_version(dense_agent: OfflineAgent) -> None:
    a = await dense_agent.triage(
        TriageRequest(text="Hur ansöker man om personlig assistans?", channel="web")
    )
    assert a.ranked_doc_ids[0] == ASSISTANCE
    assert a.answer_language == "sv"
    assert a.confidence >= 0.5
    decision = decide(Situation(assessment=a, message_words=6), default_policy())
    assert decision.action is Action.ANSWER


def test_vectors_are_cached_by_content_and_reused(subset: list[Document], tmp_path: Path) -> None:
    first = CountingEmbedder()
    agent = OfflineAgent(subset, vector_cache=tmp_path / "cache", embedder=lambda: first)
    assert agent.wait_ready(30)
    entries = len(agent.passages) + len(agent.titles)  # every passage and service name
    assert first.passages == entries
    assert agent.dense is not None
    assert agent.dense.computed == entries

    second = CountingEmbedder()
    again = OfflineAgent(subset, vector_cache=tmp_path / "cache", embedder=lambda: second)
    assert again.ready_fraction == 1.0  # loaded from the cache before any thread ran
    assert again.wait_ready(30)
    assert second.passages == 0
    assert again.dense is not None
    assert again.dense.computed == 0
    np.testing.assert_array_equal(again.dense.vectors, agent.dense.vectors)


def test_changed_document_recomputes_only_its_passages(
    subset: list[Document], tmp_path: Path
) -> None:
    agent = OfflineAgent(
        subset, vector_cache=tmp_path / "v.sqlite3", embedder=lambda: CountingEmbedder()
    )
    assert agent.wait_ready(30)
    changed = subset[0].model_copy(
        update={"text": {**subset[0].text, "fi": subset[0].text["fi"] + "\n\nUusi kappale."}}
    )
    embedder = CountingEmbedder()
    again = OfflineAgent(
        [changed, *subset[1:]], vector_cache=tmp_path / "v.sqlite3", embedder=lambda: embedder
    )
    assert again.wait_ready(30)
    assert 0 < embedder.passages <= 2


def test_without_cache_vectors_live_in_memory(subset: list[Document]) -> None:
    embedder = CountingEmbedder()
    agent = OfflineAgent(subset[:2], embedder=lambda: embedder)
    assert agent.wait_ready(30)
    assert embedder.passages == len(agent.passages) + len(agent.titles)


def test_titles_and_first_passages_are_embedded_first(subset: list[Document]) -> None:
    agent = OfflineAgent(subset, dense=True, embedder=CountingEmbedder)
    assert agent.wait_ready(30) and agent.dense is not None
    order = agent.dense.fill_order()
    n = len(agent.passages)
    first = order[: agent.dense.first_count]
    assert {i for i in first if i >= n} == set(range(n, n + len(agent.titles)))
    assert all(agent.passages[i].index == 0 for i in first if i < n)
    assert all(i < n and agent.passages[i].index > 0 for i in order[len(first) :])
    # The indexer embedded them in that order.
    embedder = agent.dense.embedder()
    assert isinstance(embedder, CountingEmbedder)
    texts = [p.indexed_text for p in agent.passages] + [t.text for t in agent.titles]
    assert embedder.texts == [texts[i] for i in order]


async def test_dense_ranking_joins_once_titles_and_first_passages_exist(
    dense_agent: OfflineAgent, subset: list[Document], vector_dir: Path
) -> None:
    """A Swedish question about a Finnish-only text: lexical retrieval cannot bridge the
    languages; the first vectors can, before the rest of the passages have theirs."""
    agent = OfflineAgent(subset, vector_cache=vector_dir)  # every vector from the cache
    assert agent.wait_ready(60) and agent.dense is not None
    dense, order = agent.dense, agent.dense.fill_order()
    question = TriageRequest(text="Hur får jag ett lånekort till biblioteket?", channel="web")

    dense.ready[:] = False
    dense.ready[order[: dense.first_count - 1]] = True  # one first vector still missing
    lexical = await agent.triage(question)
    assert "dense_top" not in lexical.scores

    dense.ready[:] = False
    dense.ready[order[: dense.first_count]] = True
    assert dense.usable and not dense.complete
    a = await agent.triage(question)
    assert "dense_top" in a.scores
    assert a.ranked_doc_ids[0] == LIBRARY
    assert a.answer_language == "fi" and a.answer
    # The quote starts in a passage that has its vector: here the first one.
    first_passage = next(p for p in agent.passages if p.doc_id == LIBRARY and p.index == 0)
    assert a.answer.split(". ")[0] in first_passage.text


STOP_MID_INDEXING = """
import sys, time
from pathlib import Path
from agents.knowledge.store import read_docs_jsonl
from agents.offline import OfflineAgent
docs = read_docs_jsonl(Path(sys.argv[1]).read_text(encoding="utf-8").splitlines())[:40]
agent = OfflineAgent(docs, vector_cache=Path(sys.argv[2]))
deadline = time.monotonic() + 120
while agent.dense.computed == 0 and time.monotonic() < deadline:
    time.sleep(0.05)
assert 0 < agent.dense.computed and not agent.dense.complete, agent.dense.computed
agent.close()
print("closed", agent.dense.computed, flush=True)
"""


def test_a_process_stopping_mid_indexing_exits_cleanly(tmp_path: Path) -> None:
    """Exiting while the indexer thread is inside onnxruntime aborts the process; close()
    stops it after the batch in hand, and the vectors so far stay in the cache."""
    docs = DEMO_KB / "ptv-general-descriptions.docs.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", STOP_MID_INDEXING, str(docs), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr
    kept = int(done.stdout.split()[1])
    cache = VectorCache(tmp_path / "cache", E5Embedder.model_id)
    with closing(sqlite3.connect(cache.path)) as db:
        (stored,) = db.execute("SELECT count(*) FROM vectors").fetchone()
    assert stored >= kept > 0
