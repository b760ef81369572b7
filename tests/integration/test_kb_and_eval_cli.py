"""``neuvonta kb`` and ``neuvonta eval`` as a user runs them: the real CLI, a real SQLite file
(and PostgreSQL where available), real fixtures, web sources from a local HTTP server."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from agents.cli import FIGURE_KEYS
from router.cli import app
from tests.fakes.openai_server import OpenAIFake, Reply, answer

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests/unit/agents/data"
DEMO_KB = ROOT / "agents/knowledge/demo/ptv-general-descriptions.docs.jsonl"
# Four services of the demo knowledge base, the targets of mini.questions.jsonl.
MINI_IDS = (
    "6d5b9dea-beb0-4458-b7f9-4d0bd982ccf7",  # Library services
    "4a26a78e-bfa1-4799-ae77-7827bd546646",  # Waste management
    "448efa73-256b-4932-9079-5c11296e6f7e",  # Building permit
    "c52233a0-2089-437d-b841-ae4676399976",  # Municipal family day care
)
FIGURES = set(FIGURE_KEYS)


@pytest.fixture(autouse=True)
def user_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No outside configuration; caches and default output files inside the test's folder."""
    for var in ("DATABASE_URL", "NEUVONTA_DATABASE_URL", "NEUVONTA_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def ok(*args: str | Path) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def demo_rows(ids: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in DEMO_KB.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if r["id"] in ids]


@pytest.fixture
def mini_kb(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "mini.docs.jsonl", demo_rows(MINI_IDS))


def summary_line(result: Result) -> str:
    return next(line for line in result.stdout.splitlines() if line.startswith("added "))


# --- neuvonta kb ingest: idempotent sync ---


def test_ingest_is_idempotent_per_source(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    rows = demo_rows(MINI_IDS)
    source = write_jsonl(tmp_path / "kb.docs.jsonl", rows)

    first = ok("kb", "ingest", source)
    assert "4 documents in" in first.stdout
    assert summary_line(first) == "added 4 · changed 0 · unchanged 0 · removed 0"
    assert "restart `neuvonta serve`" in first.stdout

    again = ok("kb", "ingest", source)
    assert summary_line(again) == "added 0 · changed 0 · unchanged 4 · removed 0"
    assert "Nothing changed." in again.stdout

    rows[0]["text"]["fi"] += "\n\nKirjasto on suljettu juhannuksena."
    write_jsonl(source, rows)
    assert summary_line(ok("kb", "ingest", source)) == (
        "added 0 · changed 1 · unchanged 3 · removed 0"
    )

    # Another source's documents survive a sync of the first source.
    ptv = ok("kb", "ingest", DATA / "ptv-services.json")
    assert summary_line(ptv) == "added 2 · changed 0 · unchanged 0 · removed 0"
    assert "skipped 2:" in ptv.stdout

    write_jsonl(source, rows[1:])
    assert summary_line(ok("kb", "ingest", source)) == (
        "added 0 · changed 0 · unchanged 3 · removed 1"
    )
    listed = json.loads(ok("kb", "list", "--json").stdout)
    sources = {d["id"]: d["source"] for d in listed}
    assert len(listed) == 5
    assert rows[0]["id"] not in sources
    assert sources["5e1b7a0c-2f4d-4c8e-9a51-0d7c3b9e6a11"] == str(DATA / "ptv-services.json")
    assert sources[rows[1]["id"]] == str(source.resolve())


def test_bad_sources_exit_2_and_change_nothing(tmp_path: Path) -> None:
    data: list[str | Path] = ["--data-dir", tmp_path / "var"]
    missing = run("kb", "ingest", tmp_path / "nope.jsonl", *data)
    assert missing.exit_code == 2
    assert "no such file or folder" in missing.stderr
    broken = tmp_path / "broken.docs.jsonl"
    broken.write_text('{"id": "a", "title": {"fi": "A"}, "text": {"fi": "A."}}\n{"id": \n')
    result = run("kb", "ingest", broken, *data)
    assert result.exit_code == 2
    assert "line 2" in result.stderr
    # A source without documents never empties the knowledge base.
    empty = tmp_path / "empty.json"
    empty.write_text('{"pageNumber": 1, "pageCount": 1, "itemList": []}')
    nothing = run("kb", "ingest", empty, *data)
    assert nothing.exit_code == 2
    assert "no documents found" in nothing.stderr
    assert json.loads(ok("kb", "list", "--json", *data).stdout) == []


def test_ingest_drops_the_cached_vectors_of_removed_and_changed_pages(
    tmp_path: Path, mini_kb: Path
) -> None:
    import sqlite3

    from agents.knowledge.store import read_docs_jsonl
    from agents.passages import vector_keys

    data: list[str | Path] = ["--data-dir", tmp_path / "var"]
    ok("kb", "ingest", mini_kb, *data)
    ok("kb", "search", "Mistä voin lainata kirjoja?", *data)  # fills the data folder's cache
    cache = tmp_path / "var" / "kb-vectors" / "vectors.sqlite3"

    def cached() -> set[str]:
        with sqlite3.connect(cache) as db:
            return {k for (k,) in db.execute("SELECT key FROM vectors")}

    docs = read_docs_jsonl(mini_kb.read_text("utf-8").splitlines())
    assert vector_keys(docs) <= cached()
    library, rewritten, *rest = sorted(docs, key=lambda d: d.id != MINI_IDS[0])
    assert library.id == MINI_IDS[0] and rewritten.text.get("fi")
    # The site now: no library page, and another page's Finnish text rewritten.
    new_text = rewritten.model_copy(
        update={"text": {**rewritten.text, "fi": "Jätehuolto on uudistunut."}}
    )
    write_jsonl(mini_kb, [d.model_dump(mode="json") for d in (new_text, *rest)])
    assert summary_line(ok("kb", "ingest", mini_kb, *data)).startswith(
        "added 0 · changed 1 · unchanged 2 · removed 1"
    )
    left = cached()
    assert not vector_keys([library]) & left
    assert not (vector_keys([rewritten]) - vector_keys([new_text])) & left
    assert vector_keys(rest) <= left  # the other pages' vectors stay
    assert vector_keys([rewritten]) & vector_keys([new_text]) <= left  # and the unchanged parts'


# --- neuvonta kb list / search ---


def test_list_and_search(tmp_path: Path, mini_kb: Path) -> None:
    data: list[str | Path] = ["--data-dir", tmp_path / "var"]
    ok("kb", "ingest", mini_kb, *data)
    table = ok("kb", "list", *data).stdout
    assert "4 documents" in table
    assert "fi Kirjastopalvelut" in table
    assert "en Library services" in table
    assert "P25" in table and "en fi sv" in table

    search = ok("kb", "search", "Mistä voin lainata kirjoja?", "--top", "3", *data)
    # The server's vector cache is filled from the bundled vectors: nothing to compute.
    assert "passage vectors computed" not in search.stderr
    assert (tmp_path / "var" / "kb-vectors" / "vectors.sqlite3").exists()
    found = search.stdout
    rows = [line for line in found.splitlines() if line.startswith("│")]
    assert len(rows) >= 3
    assert "Kirjastopalvelut" in found.split("│ 2 ")[0]  # the library is ranked first
    assert "the router would answer" in found

    swedish = ok("kb", "search", "sopor sortering", "--lang", "sv", "--top", "4", *data).stdout
    ranks = [line.split("│") for line in swedish.splitlines() if line.startswith("│ ")]
    langs = [cells[3].strip() for cells in ranks if cells[1].strip().isdigit()]
    assert langs == ["sv"] * 4


def test_search_on_an_empty_knowledge_base(tmp_path: Path) -> None:
    result = run("kb", "search", "kirjasto", "--data-dir", tmp_path / "var")
    assert result.exit_code == 1
    assert "knowledge base is empty" in result.stderr


# --- Web and PTV API sources from a local server ---


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/broken"):
            self.send_error(500, "Server exploded")
            return
        super().do_GET()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    shutil.copytree(DATA / "site", root)
    api = root / "api/v11/Service/list/area/Municipality/code"
    api.mkdir(parents=True)
    shutil.copy(DATA / "ptv-services.json", api / "753")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def write_sitemap(root: Path, base: str, pages: list[str]) -> None:
    urls = "".join(f"<url><loc>{base}/{p}</loc></url>" for p in pages)
    (root / "sitemap.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>\n'
    )


def test_sitemap_url_ingest(tmp_path: Path, web: tuple[str, Path]) -> None:
    base, root = web
    data: list[str | Path] = ["--data-dir", tmp_path / "var"]
    pages = ["kirjasto.html", "sv/bibliotek.html", "jatehuolto.html", "uutiset.html", "gone.html"]
    write_sitemap(root, base, pages)
    first = ok("kb", "ingest", f"{base}/sitemap.xml", *data)
    assert summary_line(first) == "added 2 · changed 0 · unchanged 0 · removed 0"
    assert "no text" in first.stdout and "HTTP 404" in first.stdout
    docs = {d["url"]: d for d in json.loads(ok("kb", "list", "--json", *data).stdout)}
    library = docs["https://www.esimerkkikunta.fi/kirjasto"]  # the page's canonical URL
    assert library["languages"] == ["fi", "sv"]  # fi and sv versions merged by hreflang
    assert library["title"] == {"fi": "Kirjasto", "sv": "Bibliotek"}
    assert docs[f"{base}/jatehuolto.html"]["languages"] == ["fi"]  # detected: no <html lang>

    write_sitemap(root, base, pages[:2])
    assert summary_line(ok("kb", "ingest", f"{base}/sitemap.xml", *data)) == (
        "added 0 · changed 0 · unchanged 1 · removed 1"
    )


def test_fetch_failures_are_clear_and_change_nothing(tmp_path: Path, web: tuple[str, Path]) -> None:
    base, root = web
    data: list[str | Path] = ["--data-dir", tmp_path / "var"]
    write_sitemap(root, base, ["kirjasto.html", "broken/page.html"])
    result = run("kb", "ingest", f"{base}/sitemap.xml", *data)
    assert result.exit_code == 1
    assert "HTTP 500" in result.stderr
    closed = run("kb", "ingest", "http://127.0.0.1:9/kb.jsonl", "--timeout", "2", *data)
    assert closed.exit_code == 1
    assert "cannot fetch http://127.0.0.1:9/kb.jsonl" in closed.stderr
    assert json.loads(ok("kb", "list", "--json", *data).stdout) == []


def test_ptv_api_ingest(tmp_path: Path, web: tuple[str, Path]) -> None:
    base, _ = web
    data: list[str | Path] = ["--data-dir", tmp_path / "var", "--ptv-api", f"{base}/api/v11"]
    result = ok("kb", "ingest", "ptv:753", *data)
    assert "2 documents in ptv:753 (ptv)" in result.stdout
    assert summary_line(result) == "added 2 · changed 0 · unchanged 0 · removed 0"
    listed = json.loads(ok("kb", "list", "--json", "--data-dir", tmp_path / "var").stdout)
    assert {d["source"] for d in listed} == {"ptv:753"}
    assert {tuple(d["departments"]) for d in listed} == {("P25",), ("P23", "P2")}


# --- neuvonta eval ---


def test_eval_json_and_sweep(tmp_path: Path, mini_kb: Path) -> None:
    chart = tmp_path / "sweep.png"
    result = ok(
        "eval", "--kb", mini_kb, "--questions", DATA / "mini.questions.jsonl",
        "--json", "--sweep", "--chart", chart,
    )  # fmt: skip
    report = json.loads(result.stdout)  # stdout holds the JSON object and nothing else
    assert set(report) == FIGURES | {"by_lang", "sweep"}
    assert set(report["by_lang"]) == {"fi", "sv", "en"}
    assert all(set(f) == FIGURES for f in report["by_lang"].values())
    for key in FIGURES - {"latency_ms_p50", "latency_ms_p99"}:
        assert report[key] is None or 0.0 <= report[key] <= 1.0, key
    assert report["urgent_recall"] == 1.0
    assert report["hit_at_5"] == 1.0
    assert report["latency_ms_p50"] > 0
    assert [p["threshold"] for p in report["sweep"]] == [i / 20 for i in range(21)]
    assert report["sweep"][-1]["answers"] == 0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"sweep chart: {chart}" in result.stderr
    # Dense retrieval with the bundled vectors (seeded into the user cache): none computed.
    assert "passage vectors computed" not in result.stderr
    assert (tmp_path / "cache" / "neuvonta" / "vectors" / "vectors.sqlite3").exists()


def test_eval_table(mini_kb: Path, tmp_path: Path) -> None:
    result = ok(
        "eval", "--kb", mini_kb, "--questions", DATA / "mini.questions.jsonl",
        "--lexical-only", "--sweep",
    )  # fmt: skip
    out = result.stdout
    assert "8 questions · 4 documents · agent offline (lexical only) · threshold 0.50" in out
    header = next(line for line in out.splitlines() if "figure" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == ["figure", "all", "en", "fi", "sv"]
    for key in ("answer_precision", "coverage", "false_answer_rate", "urgent_recall"):
        assert any(line.startswith(f"│ {key} ") for line in out.splitlines()), key
    assert "0.50 ◀ default" in out
    assert (tmp_path / "eval-sweep.png").exists()  # the default chart path


def test_eval_noop_agent(mini_kb: Path) -> None:
    result = ok(
        "eval", "--kb", mini_kb, "--questions", DATA / "mini.questions.jsonl",
        "--agent", "noop", "--json",
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["false_answer_rate"] == 1.0  # it answers everything
    assert report["urgent_recall"] == 0.0


def test_eval_input_errors(tmp_path: Path, mini_kb: Path) -> None:
    questions = DATA / "mini.questions.jsonl"
    llm = run("eval", "--kb", mini_kb, "--questions", questions, "--agent", "llm")
    assert llm.exit_code == 2
    assert "--agent llm needs NEUVONTA_LLM_BASE_URL" in llm.stderr

    missing = run("eval", "--kb", tmp_path / "none.docs.jsonl", "--questions", questions)
    assert missing.exit_code == 2
    assert "none.docs.jsonl: no such file" in missing.stderr

    bad = tmp_path / "bad.questions.jsonl"
    bad.write_text('{"id": "q1", "text": "Kirjasto?"}\n{"id": "q2"}\n', encoding="utf-8")
    malformed = run("eval", "--kb", mini_kb, "--questions", bad)
    assert malformed.exit_code == 2
    assert "bad.questions.jsonl, line 2: text: Field required" in malformed.stderr
    assert malformed.stdout == ""


async def test_eval_llm_agent_against_an_openai_compatible_endpoint(
    mini_kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same figures through the LLM agent; the model here quotes the first source sent."""
    async with OpenAIFake(default=quote_first_source) as fake:
        monkeypatch.setenv("NEUVONTA_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("NEUVONTA_LLM_API_KEY", fake.api_key)
        monkeypatch.setenv("NEUVONTA_LLM_MODEL", fake.model)
        args: list[str | Path] = [
            "eval",
            "--kb",
            mini_kb,
            "--questions",
            DATA / "mini.questions.jsonl",
        ]
        result = await asyncio.to_thread(run, *args, "--agent", "llm", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert fake.requests, "the questions went to the model"
        assert report["urgent_recall"] == 1.0  # urgent messages never wait for a model
        assert report["coverage"] > 0 and report["answer_precision"] is not None
        assert fake.api_key not in result.output


def quote_first_source(body: dict[str, Any]) -> Reply:
    """A model that answers with the first sentence of the first source it is sent."""
    data = json.loads(body["messages"][-1]["content"])
    first = data["sources"][0]
    sentence = first["text"].split(".")[0].strip() + "."
    return answer(sentence, [first["id"]], language=data["reply_language"])
