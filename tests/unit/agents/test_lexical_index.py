"""The lexical index's column-major scoring gives the plain TF-IDF cosines."""

from __future__ import annotations

import numpy as np

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
