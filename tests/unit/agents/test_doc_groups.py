"""Per-document maxima of passage scores: one pass over runs equals the sorting reference;
the per-language median centring equals numpy's median."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from agents.passages import Passage
from agents.retrieval import DocGroups, HybridRetriever, _median


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
    np.testing.assert_array_equal(DocGroups(doc, 8).top(scores), want_best)


@given(st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=1, max_size=60))
def test_the_median_is_numpys(values: list[float]) -> None:
    x = np.array(values)
    assert _median(x) == np.median(x)


@given(st.lists(st.sampled_from(["fi", "sv", "en"]), min_size=1, max_size=30), st.data())
def test_centring_by_language_subtracts_numpys_median_of_the_known_cosines(
    langs: list[str], data: st.DataObject
) -> None:
    passages = [
        Passage(doc_id=f"d{i}", lang=lang, index=0, title="t", text=f"text {i}")
        for i, lang in enumerate(langs)
    ]
    retriever = HybridRetriever(passages)
    values = st.one_of(st.just(-np.inf), st.floats(-1.0, 1.0, allow_nan=False))
    cosines = np.array(data.draw(st.lists(values, min_size=len(langs), max_size=len(langs))))
    want = cosines.copy()
    for lang in set(langs):
        group = np.array([i for i, x in enumerate(langs) if x == lang])
        known = cosines[group][np.isfinite(cosines[group])]
        if len(known):
            want[group] -= np.median(known)
    np.testing.assert_array_equal(retriever.center_by_language(cosines), want)
