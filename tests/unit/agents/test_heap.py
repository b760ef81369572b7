"""The serving process's long-lived heap is out of the garbage collector's way; nothing
short-lived is frozen with it."""

from __future__ import annotations

import gc
import weakref

from agents.base import Document
from agents.offline import OfflineAgent
from router.app import settle_agent


def tracked() -> set[int]:
    return {id(o) for o in gc.get_objects()}


def test_a_serving_agents_index_is_frozen_and_new_objects_still_collected(
    demo_docs: list[Document],
) -> None:
    agent = OfflineAgent(demo_docs[:40], dense=False)
    settle_agent(agent)  # waits for the index, as serve does before it settles
    try:
        check_frozen(agent)
    finally:
        gc.unfreeze()  # the rest of the test session's garbage stays collectable


def check_frozen(agent: OfflineAgent) -> None:
    # A full collection walks every tracked object; the index is most of them, and walking
    # it under load is what set the p99 latency. Frozen, the collector no longer sees it.
    seen = tracked()
    assert agent.retriever is not None
    assert id(agent.passages) not in seen
    assert not any(id(p) in seen for p in agent.passages)
    assert gc.get_freeze_count() > len(agent.passages)
    # What is allocated afterwards is still collected as before.
    fresh: list[object] = []
    fresh.append(fresh)
    assert any(o is fresh for o in gc.get_objects())


def test_building_an_agent_freezes_nothing(demo_docs: list[Document]) -> None:
    # An evaluation's agent (the what-if, neuvonta eval) is dropped after one run: frozen,
    # its cycles would never be collected.
    agent = OfflineAgent(demo_docs[:40], dense=False)
    assert agent.wait_indexed(60)
    assert id(agent.passages) in tracked()
    gone = weakref.ref(agent)
    agent.close()
    del agent
    gc.collect()
    assert gone() is None
