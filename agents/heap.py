"""Keep the long-lived heap out of the cyclic garbage collector's way.

The knowledge base, the lexical index and the model's Python side are a few hundred
thousand objects that live as long as the process. Each full collection walks all of
them (~135 ms with the demo knowledge base on this machine kind), and a full collection
now and then under load is what sets the p99 latency. Frozen after start-up, they are
never walked again; what a message allocates is collected as before.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()


def settle_heap() -> int:
    """Collect what start-up left behind, then freeze the survivors; returns how many.

    Called after each large build (lexical index, model load, start-up). What a freeze
    holds is never freed, so an index replaced later (a knowledge-base reload) stays in
    memory until restart: a rare event, and cheaper than a full walk every few seconds.
    """
    with _lock:  # two builders finishing at once would collect twice for nothing
        gc.collect()
        gc.freeze()
        return gc.get_freeze_count()
