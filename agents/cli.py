"""The ``neuvonta eval`` and ``neuvonta kb`` commands.

The commands are thin: evaluation is ``agents.evaluate``, reading sources and the sync are
``agents.knowledge.ingest``. Results go to stdout; progress bars, warnings and errors to
stderr, so ``neuvonta eval --json | jq`` sees one JSON object. Exit codes: 0 done, 1 the
network, the database or the agent failed, 2 bad input (missing, unreadable or malformed files).
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from router.cli_support import DataDir, fail, run_on_database, settings_for, warn

# Heavy modules (the agent, the database, httpx) load inside the commands: `neuvonta --help`
# and the other commands do not pay for them.
if TYPE_CHECKING:
    from agents.base import Document, TriageAgent
    from agents.evaluate import Figures, Question, Report, SweepPoint
    from agents.knowledge.ingest import Loaded, SyncSummary
    from agents.knowledge.store import KnowledgeStore
    from agents.offline import OfflineAgent
    from router.policy import Policy
    from router.settings import Settings

T = TypeVar("T")
ReportProgress = Callable[[str, int, int], None]

# The figures of data/README.md, in its order: the keys of ``neuvonta eval --json``.
FIGURE_KEYS = (
    "answer_precision",
    "coverage",
    "false_answer_rate",
    "hit_at_1",
    "hit_at_5",
    "routing_accuracy",
    "urgent_recall",
    "latency_ms_p50",
    "latency_ms_p99",
)
DEFAULT_CHART = Path("eval-sweep.png")
RESTART_NOTE = (
    "The running server reads the knowledge base when it starts: restart `neuvonta serve` "
    "(and any `neuvonta worker`) to use the change."
)


def _stderr() -> Console:
    return Console(stderr=True)


@contextmanager
def _progress() -> Iterator[ReportProgress]:
    """Progress bars on stderr, one per stage: ``report(stage, done, total)``."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_stderr(),
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        yield report


# --- neuvonta eval --------------------------------------------------------------------------


def eval_command(
    kb: Annotated[
        list[Path],
        typer.Option("--kb", help="Documents JSONL (data/README.md format); repeat for more"),
    ],
    questions: Annotated[
        Path, typer.Option("--questions", help="Questions JSONL (data/README.md format)")
    ],
    agent: Annotated[
        str,
        typer.Option(
            "--agent",
            help="offline; llm (the configured NEUVONTA_LLM_* endpoint); "
            "noop (answers everything; speed tests)",
        ),
    ] = "offline",
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", min=0.0, max=1.0, help="Answer threshold (default: the policy's)"
        ),
    ] = None,
    sweep: Annotated[
        bool, typer.Option("--sweep", help="Precision and coverage per threshold, and a chart")
    ] = False,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="PNG of the sweep [default: eval-sweep.png]")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout (progress on stderr)")
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Compute passage vectors in a temporary folder "
            "(default: reuse them from the user cache, $XDG_CACHE_HOME/neuvonta/vectors)",
        ),
    ] = False,
    lexical_only: Annotated[bool, typer.Option("--lexical-only", hidden=True)] = False,
) -> None:
    """Measure the triage on a question set against a knowledge base.

    A fresh index is built from the given documents only, never from the system's data.
    Every question goes through the router's own triage and decision code.
    Figures as in data/README.md, overall and per language.
    """
    if agent not in ("offline", "noop", "llm"):
        fail(f"unknown agent {agent!r}: use offline, llm or noop")
    if agent == "llm":
        _check_llm_settings()
    docs = read_kb_files(kb)
    qs = read_questions(questions)
    check_expected(qs, docs)
    if sweep:
        chart = _chart_path(chart)
    policy = eval_policy()
    triage, result = run_questions(
        agent, docs, kb, qs, policy, threshold, cache=not no_cache, dense=not lexical_only
    )
    points = _sweep(result, policy) if sweep else []
    if as_json:
        typer.echo(json.dumps(_report_json(result, points), ensure_ascii=False))
    else:
        mode = _agent_mode(triage)
        shown = threshold if threshold is not None else policy.default_threshold
        _print_report(result, f"{len(qs)} questions · {len(docs)} documents · {mode}", shown)
        if sweep:
            _print_sweep(points, policy.default_threshold)
    if sweep and chart is not None:
        _write_chart(points, chart, policy.default_threshold, threshold, questions, kb)
        # With --json, stdout holds the JSON object alone.
        (_stderr() if as_json else Console()).print(f"sweep chart: {chart}", soft_wrap=True)


def _check_llm_settings() -> None:
    from agents.llm import llm_configured
    from router.settings import Settings

    if not llm_configured(Settings()):
        fail(
            "--agent llm needs NEUVONTA_LLM_BASE_URL and NEUVONTA_LLM_MODEL (or "
            "NEUVONTA_LLM_AZURE_DEPLOYMENT), and NEUVONTA_LLM_API_KEY if the endpoint wants one"
        )


def run_questions(
    kind: str,
    docs: list[Document],
    kb: Sequence[Path],
    qs: Sequence[Question],
    policy: Policy,
    threshold: float | None,
    *,
    cache: bool,
    dense: bool,
) -> tuple[TriageAgent, Report]:
    """A fresh agent over ``docs`` (vectors in the user cache or a temporary folder), then
    every question through triage and ``decide()``."""
    with tempfile.TemporaryDirectory(prefix="neuvonta-eval-") as tmp:
        vectors = _user_cache() if cache else Path(tmp) / "vectors"
        agent = _eval_agent(kind, docs, kb, vectors, dense=dense)
        with _progress() as report:
            return agent, asyncio.run(_evaluate(agent, qs, policy, threshold, report))


def read_kb_files(paths: Sequence[Path]) -> list[Document]:
    """The documents of ``eval``'s ``--kb`` files (a later file's document replaces an
    earlier one's of the same id); a file that cannot be read ends the command."""
    from agents.knowledge.ingest import SourceError, parse_docs_jsonl

    docs: dict[str, Document] = {}
    for path in paths:
        try:
            found = parse_docs_jsonl(_read_file(path), str(path))
        except SourceError as e:
            fail(str(e))
        for doc in found:
            if doc.id in docs:
                warn(f"{path}: document {doc.id} is also in an earlier --kb file; kept the last")
            docs[doc.id] = doc
    if not docs:
        fail("the knowledge base is empty: give --kb files with documents")
    return list(docs.values())


def _read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except IsADirectoryError:
        fail(f"{path}: is a folder, not a file")
    except UnicodeDecodeError as e:
        fail(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})")
    except OSError as e:
        fail(f"{path}: cannot read: {e.strerror or e}")


def read_questions(path: Path) -> list[Question]:
    """A questions JSONL file (data/README.md format); exits with code 2 on bad input."""
    from agents.evaluate import Question
    from agents.knowledge.ingest import SourceError, read_jsonl

    try:
        qs = read_jsonl(_read_file(path), Question, str(path))
    except SourceError as e:
        fail(str(e))
    if not qs:
        fail(f"{path}: no questions")
    return qs


def check_expected(qs: Sequence[Question], docs: Sequence[Document]) -> None:
    """End the command when a question expects a document the knowledge base lacks."""
    known = {d.id for d in docs}
    missing = sorted({d for q in qs for d in q.expected_docs if d not in known})
    if missing:
        warn(
            f"{len(missing)} expected document(s) are not in the knowledge base "
            f"(e.g. {missing[0]}): those questions cannot be answered right"
        )


def _chart_path(chart: Path | None) -> Path:
    path = chart or DEFAULT_CHART
    if not path.parent.is_dir():
        fail(f"{path}: folder {path.parent} does not exist")
    return path


def _user_cache() -> Path:
    from agents.e5_onnx import user_cache_dir

    return user_cache_dir() / "vectors"


def eval_policy() -> Policy:
    """The router's default policy under the current settings (threshold, queues)."""
    from handoff.queues import default_policy
    from router.cli_support import queues_of
    from router.settings import Settings

    settings = Settings()
    return default_policy(settings.default_threshold, queues_of(settings))


def _seed_files() -> list[Path]:
    """The server's bundled knowledge-base files: their shipped vectors seed any cache
    (keyed by passage content, so they only ever fill in passages with the same text)."""
    from router.settings import Settings

    return list(Settings().kb_seed)


def _eval_agent(
    kind: str, docs: list[Document], kb: Sequence[Path], cache: Path, *, dense: bool
) -> TriageAgent:
    if kind == "noop":
        from agents.noop import NoopAgent

        return NoopAgent(docs)
    from agents.knowledge.seed_vectors import seed_cache
    from agents.offline import OfflineAgent
    from agents.vectors import embedder_for
    from router.settings import Settings

    if dense:
        seed_cache(cache, list(dict.fromkeys([*kb, *_seed_files()])))
    # The question encoder the router would use (NEUVONTA_QUERY_ENCODER).
    embedder = embedder_for(Settings().query_encoder)
    agent = OfflineAgent(
        docs, vector_cache=cache if dense else None, dense=dense, embedder=embedder
    )
    _wait_ready(agent)
    if kind == "llm":
        from agents.llm import LlmAgent

        return LlmAgent(Settings(), agent)  # configured: checked before the index was built
    return agent


def offline_eval_agent(kb: Sequence[Path]) -> OfflineAgent:
    """The offline agent ``neuvonta eval --kb …`` measures (dense, vectors in the user cache),
    every vector there: for the benches that measure it further (bench.dense_stages, …)."""
    from agents.offline import OfflineAgent

    agent = _eval_agent("offline", read_kb_files(kb), kb, _user_cache(), dense=True)
    assert isinstance(agent, OfflineAgent)
    return agent


def _wait_ready(agent: OfflineAgent) -> None:
    """Block until every passage vector exists, with a progress bar while they are computed."""
    started = time.monotonic()
    with _progress() as report:
        # The lexical index first (also without vectors: its build must not count as the
        # first question's latency), then the vectors.
        while not agent.wait_ready(0.25):
            dense = agent.dense
            if dense is not None and dense.error:
                break
            if dense is not None:
                report("passage vectors", int(dense.ready.sum()), len(dense.ready))
    dense = agent.dense
    if dense is not None and dense.error:
        warn(f"dense retrieval failed ({dense.error}): ranking by character n-grams only")
    elif dense is not None and dense.computed:
        took = time.monotonic() - started
        _stderr().print(f"{dense.computed} passage vectors computed in {took:.0f} s")


def _agent_mode(agent: TriageAgent) -> str:
    dense = getattr(agent, "dense", False)
    if dense is False:
        return f"agent {agent.name}"
    return f"agent {agent.name} ({'dense + lexical' if dense is not None else 'lexical only'})"


async def _evaluate(
    agent: TriageAgent,
    qs: Sequence[Question],
    policy: Policy,
    threshold: float | None,
    report: ReportProgress,
) -> Report:
    from agents.evaluate import evaluate

    report("questions", 0, len(qs))
    try:
        return await evaluate(
            agent, qs, policy, threshold=threshold, progress=lambda n, t: report("questions", n, t)
        )
    finally:
        aclose = getattr(agent, "aclose", None)  # the LLM agent's HTTP client
        if callable(aclose):
            await aclose()


def _sweep(result: Report, policy: Policy) -> list[SweepPoint]:
    from agents.evaluate import sweep

    return sweep(result, policy)


def _figures_json(f: Figures) -> dict[str, float | None]:
    return {k: getattr(f, k) for k in FIGURE_KEYS}


def _report_json(result: Report, points: Sequence[SweepPoint]) -> dict[str, Any]:
    out: dict[str, Any] = _figures_json(result)
    out["by_lang"] = {lang: _figures_json(f) for lang, f in result.by_lang.items()}
    if points:
        out["sweep"] = [p.model_dump() for p in points]
    return out


def figure_cell(key: str, value: float | None) -> str:
    """A figure as the eval tables print it (latencies in ms, the rest to 3 decimals)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if key.startswith("latency"):
        return f"{value:.1f}"
    return f"{value:.3f}"


def _print_report(result: Report, caption: str, threshold: float) -> None:
    out = Console()
    out.print(f"{caption} · threshold {threshold:.2f}", soft_wrap=True)
    table = Table()
    table.add_column("figure")
    table.add_column("all", justify="right")
    langs = list(result.by_lang)
    for lang in langs:
        table.add_column(lang, justify="right")
    table.add_row(
        "questions", str(result.questions), *(str(result.by_lang[x].questions) for x in langs)
    )
    for key in FIGURE_KEYS:
        label = key.replace("latency_ms_", "latency ms ")
        table.add_row(
            label,
            figure_cell(key, getattr(result, key)),
            *(figure_cell(key, getattr(result.by_lang[x], key)) for x in langs),
        )
    out.print(table)


def _print_sweep(points: Sequence[SweepPoint], default_threshold: float) -> None:
    Console().print("Threshold sweep (the same assessments decided again):")
    table = Table()
    for name in ("threshold", "answers", "answer_precision", "coverage", "false_answer_rate"):
        table.add_column(name, justify="right")
    for p in points:
        mark = " ◀ default" if math.isclose(p.threshold, default_threshold) else ""
        table.add_row(
            f"{p.threshold:.2f}{mark}",
            str(p.answers),
            figure_cell("", p.answer_precision),
            figure_cell("", p.coverage),
            figure_cell("", p.false_answer_rate),
        )
    Console().print(table)


def _write_chart(
    points: Sequence[SweepPoint],
    path: Path,
    default_threshold: float,
    threshold: float | None,
    questions: Path,
    kb: Sequence[Path],
) -> None:
    from agents.eval_chart import write_sweep_chart

    title = f"{questions.name} against {', '.join(p.name for p in kb)}"
    try:
        write_sweep_chart(
            points,
            path,
            default_threshold=default_threshold,
            evaluated_threshold=threshold,
            title=title,
        )
    except OSError as e:
        fail(f"{path}: cannot write the chart: {e.strerror or e}", 1)


# --- neuvonta kb ----------------------------------------------------------------------------

kb_app = typer.Typer(
    help="The running system's knowledge base: ingest sources, list and search documents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@kb_app.command("ingest")
def kb_ingest(
    source: Annotated[
        str,
        typer.Argument(
            help="A documents JSONL file, PTV service JSON, an HTML page, a folder of saved "
            "HTML pages, a sitemap.xml, an http(s) URL of any of these, or ptv:<municipality "
            "code> (the PTV API)",
            show_default=False,
        ),
    ],
    data_dir: DataDir = None,
    ptv_api: Annotated[
        str | None,
        typer.Option(
            "--ptv-api",
            envvar="NEUVONTA_PTV_API_URL",
            help="PTV Open API base URL [default: https://api.palvelutietovaranto.suomi.fi/api/v11]",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, help="Seconds to wait for each URL")
    ] = 20.0,
) -> None:
    """Add, replace and remove documents so the knowledge base holds SOURCE as it is now.

    Unchanged documents (same content hash) are skipped.
    Documents that came from the same SOURCE earlier and are gone now are removed.
    Other sources' documents are left alone.
    """
    from agents.knowledge.ingest import PTV_API, FetchError, SourceError, load_source
    from agents.vectors import forget_vectors

    settings = settings_for(data_dir)
    try:
        with _progress() as report:
            loaded = asyncio.run(
                load_source(
                    source, ptv_api=ptv_api or PTV_API, fetch_timeout=timeout, progress=report
                )
            )
            summary, before = _with_store(settings, lambda kb: _sync(kb, loaded, report))
    except SourceError as e:
        fail(str(e))
    except FetchError as e:
        fail(f"cannot fetch {e}", 1)
    # The database's copies went in the same transaction; the data folder's file now.
    forget_vectors(settings.vector_cache, summary.stale_vectors)
    _print_ingest(loaded, summary, before)


async def _sync(
    kb: KnowledgeStore, loaded: Loaded, report: ReportProgress
) -> tuple[SyncSummary, int]:
    from agents.knowledge.ingest import sync

    before = await kb.count()
    return await sync(kb, loaded.origin, loaded.docs, report), before


def _print_ingest(loaded: Loaded, summary: SyncSummary, before: int) -> None:
    out = Console(soft_wrap=True)
    out.print(f"{len(loaded.docs)} documents in {escape(loaded.origin)} ({loaded.kind})")
    out.print(
        f"added {summary.added} · changed {summary.changed} · "
        f"unchanged {summary.unchanged} · removed {summary.removed}"
    )
    if loaded.skipped:
        out.print(f"skipped {len(loaded.skipped)}:")
        for line in loaded.skipped[:20]:
            out.print(f"  - {escape(line)}")
        if len(loaded.skipped) > 20:
            out.print(f"  … and {len(loaded.skipped) - 20} more")
    if summary.modified:
        if before == 0:
            out.print(
                "The knowledge base was empty: the bundled demo documents are only loaded "
                "into an empty one, so the server will use these instead."
            )
        out.print(RESTART_NOTE)
    else:
        out.print("Nothing changed.")


@kb_app.command("list")
def kb_list(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list on stdout")] = False,
) -> None:
    """The documents: id, titles, languages, departments, source and last change."""
    entries = _with_store(settings_for(data_dir), lambda kb: kb.entries())
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": e.doc.id,
                        "title": e.doc.title,
                        "languages": sorted(e.doc.text),
                        "departments": list(e.doc.departments),
                        "source": e.origin,
                        "attribution": e.doc.source,
                        "url": e.doc.url,
                        "updated": e.updated_at.isoformat(),
                    }
                    for e in entries
                ],
                ensure_ascii=False,
            )
        )
        return
    table = Table(title=f"{len(entries)} documents", title_justify="left")
    # Narrow terminals fold the long ids and paths.
    table.add_column("id", overflow="fold")
    table.add_column("titles", overflow="fold")
    table.add_column("langs")
    table.add_column("depts")
    table.add_column("source", overflow="fold")
    table.add_column("updated")
    for e in entries:
        titles = "\n".join(
            f"{lang} {e.doc.title[lang]}" for lang in ("fi", "sv", "en") if lang in e.doc.title
        ) or e.doc.title_in("fi")
        table.add_row(
            e.doc.id,
            escape(titles),
            " ".join(sorted(e.doc.text)),
            " ".join(e.doc.departments),
            escape(_short_origin(e.origin)),
            e.updated_at.strftime("%Y-%m-%d"),
        )
    Console().print(table)
    Console().print("Full sources and times: neuvonta kb list --json", style="dim")


def _short_origin(origin: str | None) -> str:
    """A file path as its name (the full path is in --json); URLs and ptv:<code> as they are."""
    if origin is None:
        return "(loaded at first start)"
    if origin.startswith("/") or (len(origin) > 2 and origin[1:3] == ":\\"):
        return Path(origin).name
    return origin


@kb_app.command("search")
def kb_search(
    text: Annotated[str, typer.Argument(help="What a resident might ask", show_default=False)],
    lang: Annotated[
        str | None, typer.Option("--lang", help="Only passages in this language (fi, sv, en)")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, max=100, help="How many passages")] = 5,
    data_dir: DataDir = None,
    lexical: Annotated[
        bool,
        typer.Option(
            "--lexical",
            help="Do not wait for missing passage vectors; rank by character n-grams only",
        ),
    ] = False,
) -> None:
    """Ranked passages for TEXT, with the agent's own retrieval over the knowledge base.

    Uses the data folder's vector cache (kb-vectors) like the server.
    Passage vectors still missing are computed first (and kept for the server).
    """
    settings = settings_for(data_dir)
    docs = _with_store(settings, lambda kb: kb.all())
    if not docs:
        fail("the knowledge base is empty: add documents with `neuvonta kb ingest`", 1)
    agent = _search_agent(settings, docs, lexical=lexical)
    hits = search_passages(agent, text, lang=lang, top=top)
    _print_search(agent, settings, text, hits, lang)


def search_passages(
    agent: OfflineAgent, text: str, *, lang: str | None = None, top: int = 5
) -> list[tuple[float, int]]:
    """(score, passage index), best first: the agent's fused score of each passage."""
    import numpy as np

    from agents.retrieval import LEXICAL_WEIGHT, expand_query

    # The agent's own ranking step (lexical, plus dense once the first vectors exist).
    ranking = agent._rank(expand_query(text))
    scores = np.asarray(ranking.passage_lexical, dtype=np.float64)
    retriever = agent.retriever
    if ranking.passage_dense is not None and retriever is not None:
        # Centred per passage language, as the agent ranks documents (agents/RETRIEVAL.md).
        dense = retriever.center_by_language(np.asarray(ranking.passage_dense, dtype=np.float64))
        scores = dense + LEXICAL_WEIGHT * scores
    order = [
        int(i)
        for i in np.argsort(-scores, kind="stable")
        if lang is None or agent.passages[int(i)].lang == lang
    ]
    return [(float(scores[i]), i) for i in order[:top]]


def _search_agent(settings: Settings, docs: list[Document], *, lexical: bool) -> OfflineAgent:
    from agents.offline import OfflineAgent
    from router.app import build_agent

    if lexical:
        agent = OfflineAgent(docs, dense=False)
    else:
        built = build_agent(settings.model_copy(update={"agent": "offline"}), docs)
        assert isinstance(built, OfflineAgent)
        agent = built
    _wait_ready(agent)
    return agent


def _shorten(text: str, limit: int = 180) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rsplit(" ", 1)[0] + " …"


def _print_search(
    agent: OfflineAgent,
    settings: Settings,
    text: str,
    hits: Sequence[tuple[float, int]],
    lang: str | None,
) -> None:
    from agents.base import TriageRequest
    from handoff.queues import default_policy
    from router.cli_support import queues_of
    from router.decide import Situation, decide

    out = Console()
    table = Table(title=f"passages for {text!r}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("lang")
    table.add_column("document")
    table.add_column("passage")
    for rank, (score, i) in enumerate(hits, 1):
        p = agent.passages[i]
        table.add_row(
            str(rank),
            f"{score:.3f}",
            p.lang,
            escape(f"{p.title}\n{p.doc_id}"),
            escape(_shorten(p.text)),
        )
    out.print(table)
    if not hits:
        out.print(f"No passages in {lang!r}." if lang else "No passages.")
    assessment = agent.assess(TriageRequest(text=text, channel="web"))
    decision = decide(
        Situation(assessment=assessment, message_words=len(text.split())),
        default_policy(settings.default_threshold, queues_of(settings)),
    )
    verdict = decision.action.value + (f" ({decision.reason.value})" if decision.reason else "")
    out.print(
        f"agent: confidence {assessment.confidence:.2f}, department "
        f"{assessment.department or '–'} → the router would {verdict} "
        f"at threshold {decision.threshold:.2f}",
        soft_wrap=True,
    )


# --- Settings and the database --------------------------------------------------------------


def _with_store(settings: Settings, work: Callable[[KnowledgeStore], Awaitable[T]]) -> T:
    from agents.knowledge.store import KnowledgeStore

    return run_on_database(settings, lambda engine: work(KnowledgeStore(engine)))
