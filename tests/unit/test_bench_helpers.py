"""The pure helpers of the benchmarks: the page generator and the BM25 baseline."""

from __future__ import annotations

import math

from agents.base import Document
from agents.knowledge.ingest import pages_to_documents, parse_html
from bench.eval_table import Bm25, Bm25Agent, tokens
from bench.kb_ingest import EmbeddingCost, generate_pages, pick_probes, sample_texts


def test_page_generator_is_deterministic_and_mixes_languages() -> None:
    pages = list(generate_pages(60, seed=3))
    assert pages == list(generate_pages(60, seed=3))
    assert pages != list(generate_pages(60, seed=4))
    assert len(pages) == 60
    assert {p.lang for p in pages} == {"fi", "sv", "en"}
    assert len({p.path for p in pages}) == 60
    # One Finnish page per group; titles tell the groups apart.
    fi_titles = [p.title for p in pages if p.lang == "fi"]
    assert len(set(fi_titles)) == len(fi_titles) == len({p.group for p in pages})
    assert pick_probes(pages, 5, 3) == pick_probes(pages, 5, 3)


def test_generated_pages_parse_with_language_title_and_main_text_only() -> None:
    pages = list(generate_pages(40, seed=1))
    for page in pages:
        parsed = parse_html(page.html)
        assert parsed.lang == page.lang
        assert parsed.title == page.title
        assert parsed.url == page.url
        assert len(parsed.paragraphs) >= 3
        text = "\n".join(parsed.paragraphs)
        # Cookie banner, menus, search, related links and footer are not page text.
        for chrome in ("Hyväksy evästeet", "Godkänn kakor", "Accept cookies", "PL 1", "Uutiset"):
            assert chrome not in text
    parsed_pages = [(p.path, parse_html(p.html)) for p in pages]
    docs, skipped = pages_to_documents(parsed_pages, lambda _: "fi")
    # Language versions (hreflang) merge: one document per service page.
    assert not skipped
    assert len(docs) == len({p.group for p in pages})
    assert any(len(d.text) == 3 for d in docs)


def test_embedding_sample_spans_all_lengths() -> None:
    pages = [(p.path, p.html) for p in generate_pages(30, seed=2)]
    sample = sample_texts(pages, 12)
    assert len(sample) == 12
    assert [len(t) for t in sample] == sorted(len(t) for t in sample)
    # Titles (short) and whole passages (long) are both in it.
    assert len(sample[0]) < 80 < 300 < len(sample[-1])
    cost = EmbeddingCost(lengths=(50.0, 450.0), seconds_per_text=(0.01, 0.09), sample=16)
    # Interpolated by length, the sample's ends beyond it.
    assert math.isclose(cost.seconds([50, 250, 450, 900, 10]), 0.01 + 0.05 + 0.09 + 0.09 + 0.01)


def doc(doc_id: str, title: str, text: str, dept: str = "P1") -> Document:
    return Document(id=doc_id, title={"fi": title}, text={"fi": text}, departments=(dept,))


DOCS = [
    doc("a", "Kirjaston aukioloajat", "Kirjasto on auki arkisin. Lainaa kirjoja kirjastokortilla."),
    doc("b", "Rakennuslupa", "Rakennuslupaa haetaan sähköisesti. Lupa maksaa.", "P2"),
    doc("c", "Jätehuolto", "Jäteastiat tyhjennetään kahden viikon välein. Biojäte erikseen."),
    doc("d", "Päiväkodit", "Päiväkotipaikkaa haetaan neljä kuukautta ennen. Maksu tulojen mukaan."),
]


def test_bm25_matches_the_textbook_formula() -> None:
    texts = ["a b b", "a c", "c c c d"]
    index = Bm25(texts, k1=1.2, b=0.75)
    avgdl = 3.0
    # "b": only in doc 0, tf 2, |d| 3.
    idf = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    expected = idf * 2 * 2.2 / (2 + 1.2 * (1 - 0.75 + 0.75 * 3 / avgdl))
    assert math.isclose(index.scores("B b")[0], expected)
    assert list(index.scores("zzz")) == [0.0, 0.0, 0.0]
    assert tokens("Päiväkoti, 2 km!") == ["päiväkoti", "2", "km"]


def test_bm25_baseline_ranks_an_exact_title_first_and_answers_any_hit() -> None:
    agent = Bm25Agent(DOCS)
    for d in DOCS:
        a = agent.assess(d.title["fi"])
        assert a.ranked_doc_ids[0] == d.id
        assert a.sources[0].doc_id == d.id
        assert a.department == d.departments[0]
        assert a.confidence == 1.0
        assert a.answer
        assert not a.urgent
    none = agent.assess("weather in Tokyo")
    assert none.confidence == 0.0
    assert none.answer is None
    assert none.ranked_doc_ids == ()
