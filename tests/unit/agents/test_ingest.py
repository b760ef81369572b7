"""Reading knowledge-base sources: docs JSONL, PTV service JSON, saved HTML pages, sitemaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.base import Document
from agents.knowledge.ingest import (
    SourceError,
    flatten_rich_text,
    pages_to_documents,
    parse_docs_jsonl,
    parse_html,
    parse_ptv,
    parse_sitemap,
    plan_sync,
    ptv_departments,
    read_jsonl,
    sniff,
)
from agents.knowledge.store import content_hash

DATA = Path(__file__).parent / "data"
PTV_FIXTURE = DATA / "ptv-services.json"
SITE = DATA / "site"
LIBRARY = "5e1b7a0c-2f4d-4c8e-9a51-0d7c3b9e6a11"
WASTE = "8d2f4c61-93ab-4e07-b1d5-7f6a2e9c0b32"


def ptv_fixture() -> object:
    return json.loads(PTV_FIXTURE.read_text(encoding="utf-8"))


def doc(doc_id: str, text: str = "Teksti.") -> Document:
    return Document(id=doc_id, title={"fi": doc_id}, text={"fi": text})


# --- JSONL ---


def test_docs_jsonl_errors_name_the_line() -> None:
    good = json.dumps({"id": "a", "title": {"fi": "A"}, "text": {"fi": "Aa."}})
    assert [d.id for d in parse_docs_jsonl(f"{good}\n\n", "kb.jsonl")] == ["a"]
    with pytest.raises(SourceError, match=r"kb\.jsonl, line 3: .*JSON"):
        parse_docs_jsonl(f"{good}\n\n{{not json\n", "kb.jsonl")
    with pytest.raises(SourceError, match=r"line 1: title: Field required"):
        parse_docs_jsonl('{"id": "b", "text": {}}', "kb.jsonl")
    with pytest.raises(SourceError, match="'a' appears more than once"):
        parse_docs_jsonl(f"{good}\n{good}\n", "kb.jsonl")


def test_read_jsonl_is_generic() -> None:
    assert read_jsonl('{"id": "x", "title": {}, "text": {}}\n', Document, "f")[0].id == "x"


# --- PTV ---


def test_ptv_services_become_documents() -> None:
    docs, skipped = parse_ptv(ptv_fixture(), "ptv.json")
    by_id = {d.id: d for d in docs}
    assert set(by_id) == {LIBRARY, WASTE}
    library = by_id[LIBRARY]
    # Names of type Name in the supported languages; Northern Sami and alternative names left out.
    assert library.title == {
        "fi": "Esimerkkikunnan pääkirjasto",
        "sv": "Exempelkommunens huvudbibliotek",
        "en": "Main library of Esimerkkikunta",
    }
    assert set(library.text) == {"fi", "sv", "en"}
    # Summary first whatever the order in the JSON, then description, instructions, charges.
    fi = library.text["fi"].split("\n\n")
    assert fi[0].startswith("Kunnan pääkirjasto lainaa")
    assert fi[1].startswith("Pääkirjastosta voit lainata")
    assert fi[-1] == "Myöhästyneistä lainoista peritään myöhästymismaksu."
    assert library.departments == ("P25",)
    assert library.url is None
    assert "Palvelutietovaranto" in library.source
    # Draft services and services without text of their own are reported, not imported.
    assert len(skipped) == 2
    assert any("Draft" in s for s in skipped)
    assert any("Kirjastoauto" in s and "no description" in s for s in skipped)


def test_ptv_rich_text_and_class_uris() -> None:
    docs, _ = parse_ptv(ptv_fixture(), "ptv.json")
    waste = next(d for d in docs if d.id == WASTE)
    assert waste.departments == ("P23", "P2")  # from the URI when the code is missing; deduped
    assert set(waste.text) == {"fi", "sv"}
    assert waste.text["fi"] == (
        "Neuvomme kotitalouksia jätteiden lajittelussa ja kierrätyksessä.\n\n"
        "Lajittele kotitalouden jätteet näin:\n\n"
        "- biojäte ruskeaan astiaan\n- pahvi ja kartonki kartonginkeräykseen\n\n"
        "Vaaralliset jätteet, kuten paristot ja maalit, vie jäteasemalle."
    )


def test_ptv_shapes() -> None:
    services = ptv_fixture()["itemList"]  # type: ignore[index]
    assert len(parse_ptv(services, "list")[0]) == 2  # a bare list
    assert [d.id for d in parse_ptv(services[0], "one")[0]] == [LIBRARY]  # one service
    with pytest.raises(SourceError, match="not PTV service JSON"):
        parse_ptv({"services": []}, "x.json")
    with pytest.raises(SourceError, match="item 0 is not a PTV service"):
        parse_ptv([{"serviceNames": []}], "x.json")


def test_flatten_rich_text_and_departments() -> None:
    assert flatten_rich_text("Rivi yksi.\r\nRivi kaksi. ") == "Rivi yksi.\nRivi kaksi."
    assert flatten_rich_text('{"blocks": "broken"') == '{"blocks": "broken"'
    ordered = json.dumps(
        {"blocks": [{"text": "Eka", "type": "ordered-list-item"}, {"text": "", "type": "x"}]}
    )
    assert flatten_rich_text(ordered) == "1. Eka"
    assert ptv_departments([{"code": "P5.2.1"}, {"uri": "http://x/code/P5"}, {"code": "X1"}]) == (
        "P5",
    )


# --- HTML ---


def test_html_main_text_without_chrome() -> None:
    page = parse_html((SITE / "kirjasto.html").read_text(encoding="utf-8"))
    assert page.title == "Kirjasto"  # the page's heading, not "Kirjasto – Esimerkkikunta"
    assert page.lang == "fi"
    assert page.url == "https://www.esimerkkikunta.fi/kirjasto"
    assert page.alternates == {
        "fi": "https://www.esimerkkikunta.fi/kirjasto",
        "sv": "https://www.esimerkkikunta.fi/sv/bibliotek",
    }
    text = "\n\n".join(page.paragraphs)
    assert text.startswith("Kunnan kirjastosta voit lainata kirjoja")
    assert "Aukioloajat.\n\nPääkirjasto on avoinna arkisin kello 10–20" in text  # heading + text
    assert "Lasten satutunnit keskiviikkoisin" in text
    for chrome in ("Päävalikko", "Asuminen", "Etusivu", "evästeitä", "Hyväksy", "Kunnantie",
                   "analytics", "trackSection", "font-family", "piilotettu"):  # fmt: skip
        assert chrome not in text


def test_html_without_main_or_metadata() -> None:
    page = parse_html((SITE / "jatehuolto.html").read_text(encoding="utf-8"))
    assert (page.title, page.lang, page.url) == ("Jätehuolto", None, None)
    assert page.paragraphs[0].startswith("Kotitalouksien jätteet kerätään")
    assert page.paragraphs[1] == "Jäteasema."
    # <br> breaks a line, not the paragraph.
    assert page.paragraphs[2].endswith("maksutta.\nJäteasema on avoinna tiistaisin ja torstaisin.")
    assert "Etusivu" not in "".join(page.paragraphs)
    assert "kirjaamo@" not in "".join(page.paragraphs)


def test_html_relative_canonical_uses_the_fetched_url() -> None:
    html = '<html lang="en-GB"><link rel="canonical" href="/en/library"><p>Books.</p></html>'
    page = parse_html(html, "https://kunta.example/en/library?utm=x")
    assert (page.url, page.lang, page.title) == ("https://kunta.example/en/library", "en", "")


def test_language_versions_merge_into_one_document() -> None:
    pages = [
        (str(p.relative_to(SITE)), parse_html(p.read_text(encoding="utf-8")))
        for p in sorted(SITE.rglob("*.html"))
    ]
    detected: list[str] = []

    def detect(text: str) -> str:
        detected.append(text)
        return "fi"

    docs, skipped = pages_to_documents(pages, detect)
    assert skipped == ["uutiset.html: no text"]
    assert len(detected) == 1  # only the page without <html lang> needed detection
    library = next(d for d in docs if d.url == "https://www.esimerkkikunta.fi/kirjasto")
    assert library.title == {"fi": "Kirjasto", "sv": "Bibliotek"}
    assert library.text["sv"].startswith("På kommunens bibliotek")
    assert library.source == "www.esimerkkikunta.fi"
    waste = next(d for d in docs if d.id != library.id)
    assert waste.title == {"fi": "Jätehuolto"} and waste.url is None
    # Ids are stable: the same pages give the same ids.
    assert [d.id for d in pages_to_documents(pages, detect)[0]] == [d.id for d in docs]


def test_two_pages_in_one_language_stay_apart() -> None:
    a = parse_html(
        '<html lang="fi"><link rel="canonical" href="https://k.example/a">'
        '<link rel="alternate" hreflang="fi" href="https://k.example/b"><p>A.</p>'
    )
    b = parse_html('<html lang="fi"><link rel="canonical" href="https://k.example/b"><p>B.</p>')
    docs, _ = pages_to_documents([("a", a), ("b", b)], lambda _: "fi")  # fmt: skip
    assert len(docs) == 2
    # The same page twice (its canonical URL) is one document.
    docs, skipped = pages_to_documents([("a", a), ("a2", a)], lambda _: "fi")
    assert len(docs) == 1
    assert skipped == ["a2: same URL as a (https://k.example/a)"]


# --- Sitemaps and sniffing ---


def test_sitemap_and_index() -> None:
    urlset = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>https://k.example/a?x=1&amp;y=2</loc><lastmod>2024-01-01</lastmod></url>
  <url><loc>
    https://k.example/b
  </loc></url>
  <url><loc>https://k.example/b</loc></url>
</urlset>"""
    assert parse_sitemap(urlset) == (["https://k.example/a?x=1&y=2", "https://k.example/b"], [])
    index = (
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<sitemap><loc>https://k.example/s1.xml</loc></sitemap></sitemapindex>"
    )
    assert parse_sitemap(index) == ([], ["https://k.example/s1.xml"])


def test_sniff() -> None:
    line = json.dumps({"id": "a", "title": {}, "text": {}})
    assert sniff("kb.txt", f"{line}\n{line}\n") == "jsonl"
    assert sniff("kb.json", line) == "jsonl"
    assert sniff("x.jsonl", "") == "jsonl"
    assert sniff("services.json", PTV_FIXTURE.read_text(encoding="utf-8")) == "ptv"
    assert sniff("s.xml", '<?xml version="1.0"?>\n<urlset><url/></urlset>') == "sitemap"
    assert sniff("page", "<!doctype html><html></html>") == "html"
    with pytest.raises(SourceError, match="not a knowledge-base source"):
        sniff("notes.txt", "just some words")
    with pytest.raises(SourceError, match="JSON array of documents"):
        sniff("kb.json", f"[{line}]")


# --- Sync plan ---


def test_plan_sync_adds_changes_keeps_and_removes_only_its_own() -> None:
    same, old = doc("same"), doc("edited", "Vanha.")
    catalogue: dict[str, tuple[str, str | None]] = {
        "same": (content_hash(same), "a.jsonl"),
        "edited": (content_hash(old), "a.jsonl"),
        "gone": ("h1", "a.jsonl"),
        "other": ("h2", "b.jsonl"),
        "seeded": ("h3", None),
    }
    plan = plan_sync(catalogue, "a.jsonl", [same, doc("edited", "Uusi."), doc("new")])
    assert [d.id for d in plan.added] == ["new"]
    assert [d.id for d in plan.changed] == ["edited"]
    assert plan.unchanged == ["same"]
    assert plan.removed == ["gone"]  # never another source's or a seeded document
    again = plan_sync(catalogue, "a.jsonl", [same])
    assert again.removed == ["edited", "gone"]
