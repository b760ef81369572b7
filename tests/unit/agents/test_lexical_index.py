"""The lexical index's column-major scoring gives the plain TF-IDF cosines, and its own
one-text transform gives sklearn's rows."""

from __future__ import annotations

import numpy as np
import pytest

from agents import retrieval
from agents.base import Document
from agents.passages import all_passages
from agents.retrieval import LexicalIndex


def test_batched_scores_equal_the_plain_cosines_also_for_unknown_words() -> None:
    docs = [
        Document(id="lib", title={"fi": "Kirjasto"}, text={"fi": "Kirjastossa lainataan kirjoja."}),
        Document(id="pool", title={"fi": "Uimahalli"}, text={"fi": "Uimahalli on auki arkisin."}),
        Document(id="dog", title={"en": "Dog parks"}, text={"en": "Dogs run free in dog parks."}),
    ]
    passages = all_passages(docs)
    index = LexicalIndex(passages)
    queries = ["Milloin uimahalli on auki?", "lainata kirja", "qqqq", "dog"]
    got = index.scores_many(queries)
    vectorizer = index._vectorizer
    matrix = vectorizer.transform([p.indexed_text for p in passages])
    want = (matrix @ vectorizer.transform(queries).T).toarray().T
    assert got.shape == (len(queries), len(passages))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert not got[2].any()  # no n-gram of "qqqq" is in the index
    assert int(np.argmax(got[0])) == next(i for i, p in enumerate(passages) if p.doc_id == "pool")
    np.testing.assert_allclose(index.scores("dog"), want[3])


def test_cached_rows_and_blocks_give_the_plain_cosines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Questions and answer sentences are kept transformed (rows and stacked blocks): hits,
    repeats within a batch and evictions all give what a fresh transform and scipy's sparse
    product give, to the last bit (a sentence or passage choice must not change)."""
    monkeypatch.setattr(retrieval, "ROW_CACHE", 20)  # 20 rows, 2 blocks: evictions happen
    docs = [
        Document(id="lib", title={"fi": "Kirjasto"}, text={"fi": "Kirjastossa lainataan kirjoja."}),
        Document(id="dog", title={"en": "Dog parks"}, text={"en": "Dogs run free in dog parks."}),
    ]
    index = LexicalIndex(all_passages(docs))
    vectorizer = index._vectorizer

    def plain(text: str, others: list[str]) -> np.ndarray:
        m = vectorizer.transform([text, *others])
        return np.asarray((m[1:] @ m[0].T).toarray().ravel())

    sentences = [f"Lause {i}: koirat ja kirjat, dogs {i % 3}." for i in range(30)]
    calls = [("koira", sentences[i : i + 3]) for i in range(0, 27, 2)]
    extra = [("kirja", sentences[:3]), ("koira", sentences[:3]), ("", sentences[:2]), ("x", ["y"])]
    for text, others in [*calls, *calls[:3], *extra]:
        np.testing.assert_array_equal(index.similarity(text, others), plain(text, others))
    queries = ["dog", "lainata kirja", "dog", "", *sentences[:25]]
    want = index._by_gram @ vectorizer.transform(queries).T
    for _ in range(2):  # the second batch from the cache
        np.testing.assert_array_equal(index.scores_many(queries), want.toarray().T)


def test_a_text_is_transformed_as_sklearn_transforms_it(demo_docs: list[Document]) -> None:
    """Our one-text TF-IDF row is sklearn's, to the last bit: the same n-grams and counts,
    log(tf) + 1, idf and L2 norm (questions, answer sentences, texts with repeated and
    unknown n-grams, empty ones)."""
    passages = all_passages(demo_docs)
    index = LexicalIndex(passages)
    texts = [
        "Mistä saan rakennusluvan omakotitalolle?",
        "Hur ansöker jag om dagvård för mitt barn?",
        "How do I renew my library card?",
        "",
        " ",
        "qqqq zzzz",
        "kirja kirja kirja kirjasto kirjastossa KIRJA",
        "Tab\tand\nnewline  double  space, ÅÄÖ åäö",
        "😀 emoji ٱلعربية русский 中文",
        *(p.text for p in passages[::40]),
    ]
    matrix = index._vectorizer.transform(texts)
    for i, text in enumerate(texts):
        columns, values = index._row(text)
        at, to = matrix.indptr[i], matrix.indptr[i + 1]
        np.testing.assert_array_equal(columns, matrix.indices[at:to])
        np.testing.assert_array_equal(values, matrix.data[at:to])
