from __future__ import annotations

from agents.answer import MAX_CHARS, compose_answer, plain, shorten
from agents.passages import Passage, chunk_text


def test_summary_repeated_in_the_description_is_quoted_once() -> None:
    text = (
        "Kunta valvoo pysäköintiä.\n\n"
        "Kunta valvoo pysäköintiä ja määrää virhemaksuja, jos sillä on lupa. "
        "Pysäköintimaksu vaihtelee kunnittain.\n\nLisätietoja saa kunnasta."
    )
    passages = [
        Passage(doc_id="d", lang="fi", index=i, title="Pysäköinninvalvonta", text=t)
        for i, t in enumerate(chunk_text(text))
    ]
    answer = compose_answer(passages)
    assert answer.count("valvoo pysäköintiä") == 1
    assert "virhemaksuja" in answer


def test_answer_is_short_plain_text() -> None:
    sentences = [f"Lause numero {i} kertoo **jotain** [tärkeää](http://x)." * 3 for i in range(9)]
    answer = shorten(sentences)
    assert 0 < len(answer) <= MAX_CHARS
    assert "*" not in answer
    assert "](" not in answer


def test_answer_starts_at_the_most_relevant_sentence() -> None:
    sentences = ["Kirjasto on avoin kaikille.", "Lainaamiseen tarvitset kirjastokortin.", "Muuta."]
    answer = shorten(sentences, relevance=lambda ss: [1.0 if "kortin" in s else 0.1 for s in ss])
    assert answer.startswith("Lainaamiseen tarvitset kirjastokortin.")


def test_plain_keeps_link_text() -> None:
    assert plain("Katso **[ohje](https://example.fi)**  tästä") == "Katso ohje tästä"
