"""A deterministic stand-in for the e5 model: vectors from a hash of the text, counted."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from agents.vectors import DIM, Matrix


class CountingEmbedder:
    """Deterministic stand-in for e5 that counts what it embeds."""

    model_id = "counting-test"

    def __init__(self) -> None:
        self.passages = 0
        self.texts: list[str] = []  # every passage text embedded, in order

    def _vec(self, text: str) -> Matrix:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
        return v / np.linalg.norm(v)

    def query(self, texts: Sequence[str]) -> Matrix:
        return np.stack([self._vec(t) for t in texts])

    def passage(self, texts: Sequence[str]) -> Matrix:
        self.passages += len(texts)
        self.texts.extend(texts)
        return np.stack([self._vec(t) for t in texts])
