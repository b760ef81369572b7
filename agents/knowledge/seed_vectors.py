"""Precomputed passage vectors shipped beside a bundled knowledge base.

Embedding the demo knowledge base takes minutes on a small machine; until it is done the
offline agent ranks lexically and hands off more. The vectors are derived from our own
bundled documents (no model weights), keyed by passage content hash and model id, so a stale
entry is simply never looked up and the missing ones are computed as usual.

Regenerate after changing the demo documents or how passages are cut:

    python -m agents.knowledge.seed_vectors agents/knowledge/demo/NAME.docs.jsonl
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from agents.knowledge.store import read_docs_jsonl
from agents.vectors import DIM, VectorCache


def seed_path_for(docs_path: Path) -> Path:
    """``x.docs.jsonl`` → ``x.vectors.npz`` in the same folder."""
    return docs_path.with_name(docs_path.name.removesuffix(".docs.jsonl") + ".vectors.npz")


def import_seed(cache: VectorCache, seed: Path) -> int:
    """Add the seed's vectors the cache lacks; returns how many were added."""
    if not seed.exists():
        return 0
    with np.load(seed) as data:
        if str(data["model"]) != cache.model_id:
            return 0
        keys = [str(k) for k in data["keys"]]
        vectors = data["vectors"].astype(np.float32)
    missing = set(keys) - set(cache.load(keys))
    if not missing:
        return 0
    cache.store({k: v for k, v in zip(keys, vectors, strict=True) if k in missing})
    return len(missing)


def seed_cache(cache_path: Path, docs_paths: list[Path]) -> int:
    """Fill the offline agent's vector cache from the seeds beside the given document files."""
    from agents.vectors import E5Embedder

    cache = VectorCache(cache_path, E5Embedder.model_id)
    return sum(import_seed(cache, seed_path_for(p)) for p in docs_paths)


def export_seed(cache: VectorCache, keys: list[str], seed: Path) -> int:
    found = cache.load(keys)
    ordered = sorted(found)
    matrix = np.stack([found[k] for k in ordered]) if ordered else np.zeros((0, DIM))
    np.savez_compressed(
        seed,
        model=np.array(cache.model_id),
        keys=np.array(ordered),
        vectors=matrix.astype(np.float16),
    )
    return len(ordered)


def main(argv: list[str]) -> None:  # pragma: no cover - a maintainer's tool
    from agents.offline import OfflineAgent
    from agents.vectors import E5Embedder

    docs_path = Path(argv[0])
    docs = read_docs_jsonl(docs_path.read_text(encoding="utf-8").splitlines())
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        agent = OfflineAgent.from_documents(docs, vector_cache=Path(tmp))
        agent.wait_ready()
        keys = [p.key for p in agent.passages] + [t.key for t in agent.titles]
        cache = VectorCache(Path(tmp), E5Embedder.model_id)
        written = export_seed(cache, keys, seed_path_for(docs_path))
    print(f"{written} vectors in {time.monotonic() - started:.0f} s → {seed_path_for(docs_path)}")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
