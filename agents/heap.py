"""Keep the long-lived heap out of the cyclic garbage collector's way.

The knowledge base and the lexical index are about 150,000 objects that live as long as a
serving process. Each full collection walks all of them (37–41 ms with the demo knowledge
base on an idle machine of this kind, ~135 ms on a busy one), and a full collection now
and then under load is what sets the p99 latency. Frozen after start-up, they are
never walked again; what a message allocates is collected as before.
"""

from __future__ import annotations

import gc


def settle_heap() -> int:
    """Collect what start-up left behind, then freeze the survivors; returns how many.

    For a serving process, once its long-lived parts exist (``router.app.settle_agent``):
    what a freeze holds is never collected, even when it is dropped later, so nothing
    short-lived (an evaluation's agent, a test's) may be frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
