"""One agent per test module over the demo knowledge base (building it takes seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.base import Document
from agents.knowledge.store import read_docs_jsonl
from agents.offline import OfflineAgent

DEMO_KB = Path(__file__).parents[3] / "agents/knowledge/demo/ptv-general-descriptions.docs.jsonl"
TEMPLATE = "http://127.0.0.1:8080/kb/{doc_id}?lang={lang}"


@pytest.fixture(scope="session")
def demo_docs() -> list[Document]:
    with DEMO_KB.open(encoding="utf-8") as f:
        return read_docs_jsonl(f)


@pytest.fixture(scope="session")
def lexical_agent(demo_docs: list[Document]) -> OfflineAgent:
    """The whole demo KB, lexical retrieval only (dense vectors would take minutes)."""
    agent = OfflineAgent(demo_docs, doc_url_template=TEMPLATE, dense=False)
    assert agent.wait_ready(60)
    return agent
