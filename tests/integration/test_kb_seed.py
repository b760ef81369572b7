"""Seeding the knowledge base on first start, on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from router.app import load_knowledge
from router.settings import DEMO_KB
from tests.integration.harness import make_settings, services

SEED = DEMO_KB / "ptv-general-descriptions.docs.jsonl"


async def test_workers_starting_together_on_an_empty_database_all_get_the_whole_kb(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    """Every worker seeds an empty database: one wins, the others read what it wrote
    (before: the losers died of a unique-key error and were restarted)."""
    settings = make_settings(tmp_path, nats_url, database_url, kb_seed=[SEED])
    expected = len([line for line in SEED.read_text("utf-8").splitlines() if line.strip()])
    async with contextlib.AsyncExitStack() as stack:
        workers = [await stack.enter_async_context(services(settings)) for _ in range(4)]
        loaded = await asyncio.gather(*(load_knowledge(w) for w in workers))
    assert [len(docs) for docs in loaded] == [expected] * 4
    assert len({d.id for d in loaded[0]}) == expected
