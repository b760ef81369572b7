"""Per-document maxima of passage scores: one pass over runs equals the sorting reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from agents.retrieval import DocGroups


def reference(scores: np.ndarray, doc: np.ndarray, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    best = np.full(n_docs, -np.inf)
    arg = np.zeros(n_docs, dtype=np.int64)
    for i, (s, d) in enumerate(zip(scores, doc, strict=True)):
        if s >= best[d]:  # the last passage among equals holds it
            best[d], arg[d] = s, i
    return best, arg


@given(
    st.lists(st.integers(0, 6), min_size=1, max_size=40),
    st.data(),
    st.booleans(),
)
def test_groups_give_the_maximum_and_its_passage(
    doc_list: list[int], data: st.DataObject, in_runs: bool
) -> None:
    doc = np.array(sorted(doc_list) if in_runs else doc_list, dtype=np.int64)
    # Few distinct values: ties are common; -inf stands for a passage without a vector.
    values = st.sampled_from([-np.inf, 0.0, 0.25, 0.5, 1.0])
    scores = np.array(data.draw(st.lists(values, min_size=len(doc), max_size=len(doc))))
    best, arg = DocGroups(doc, 8).max(scores)
    want_best, want_arg = reference(scores, doc, 8)
    np.testing.assert_array_equal(best, want_best)
    present = np.isin(np.arange(8), doc)
    np.testing.assert_array_equal(arg[present], want_arg[present])
