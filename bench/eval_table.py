"""The offline agent against a plain BM25 baseline on the dev question sets, in one table.

    python -m bench.eval_table [--markdown] [--json] [--data ../shared/data] [--no-cache]

For each set of ``DATA/eval`` (municipal-dev and clinc-oos-val against the PTV knowledge
base, swefaq-dev against SweFAQ) it runs what ``neuvonta eval`` runs (the same functions:
a fresh index of the given file, every question through triage and the router's
``decide()`` at the default policy) and, in the same run, a BM25 baseline through the same
``agents.evaluate.evaluate()`` and so the same ``figures()``.

The baseline: Okapi BM25 (k1 1.2, b 0.75, Lucene's idf) over lowercase word tokens of each
document's titles and texts in all its languages. It answers with the top document's first
passage whenever any document shares a word with the question (one rule for every set),
routes to the top document's first department, and never flags anything urgent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import numpy.typing as npt

from agents.base import Assessment, Document, TriageRequest
from agents.passages import document_passages
from router.events import SourceRef

if TYPE_CHECKING:
    from agents.evaluate import Figures

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PTV = "ptv-general-descriptions.docs.jsonl"


@dataclass(frozen=True, slots=True)
class EvalSet:
    name: str
    questions: str  # under DATA/eval
    kb: str  # under DATA/kb


SETS = (
    EvalSet("municipal-dev", "municipal-dev.questions.jsonl", PTV),
    EvalSet("clinc-oos-val", "clinc-oos-val.questions.jsonl", PTV),
    EvalSet("swefaq-dev", "swefaq-dev.questions.jsonl", "swefaq.docs.jsonl"),
)
COLUMNS = (
    ("answer_precision", "answer_precision"),
    ("coverage", "coverage"),
    ("false_answer_rate", "false_answer_rate"),
    ("hit_at_1", "hit@1"),
    ("hit_at_5", "hit@5"),
    ("routing_accuracy", "routing_accuracy"),
    ("urgent_recall", "urgent_recall"),
    ("latency_ms_p50", "p50 ms"),
    ("latency_ms_p99", "p99 ms"),
)

# --- The baseline ---------------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Bm25:
    """Okapi BM25 over word tokens; each distinct query word counts once."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        counts = [Counter(tokens(t)) for t in texts]
        lengths = np.array([sum(c.values()) for c in counts], dtype=np.float64)
        # The length-normalised k1 of each document: k1 * (1 - b + b * |d| / avgdl).
        self._norm = k1 * (1 - b + b * lengths / max(float(lengths.mean()), 1e-9))
        self._k1 = k1
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, c in enumerate(counts):
            for word, tf in c.items():
                ids, tfs = postings.setdefault(word, ([], []))
                ids.append(i)
                tfs.append(tf)
        n = len(texts)
        self._postings = {
            w: (np.array(ids), np.array(tfs, dtype=np.float64), _idf(n, len(ids)))
            for w, (ids, tfs) in postings.items()
        }
        self.size = n

    def scores(self, query: str) -> npt.NDArray[np.float64]:
        out = np.zeros(self.size)
        for word in set(tokens(query)):
            if word in self._postings:
                ids, tf, idf = self._postings[word]
                out[ids] += idf * tf * (self._k1 + 1) / (tf + self._norm[ids])
        return out


def _idf(n: int, df: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def document_text(doc: Document) -> str:
    return " ".join([*doc.title.values(), *doc.text.values()])


class Bm25Agent:
    """A triage agent that is BM25 and nothing else (see the module docstring)."""

    name = "bm25"

    def __init__(self, docs: Sequence[Document], top: int = 10) -> None:
        self.docs = list(docs)
        self.index = Bm25([document_text(d) for d in self.docs])
        self.top = top

    async def triage(self, request: TriageRequest) -> Assessment:
        return self.assess(request.text)

    def assess(self, text: str) -> Assessment:
        scores = self.index.scores(text)
        ranked = [int(i) for i in np.argsort(-scores, kind="stable")[: self.top] if scores[i] > 0]
        if not ranked:
            return Assessment(
                language="und", reply_language="fi", confidence=0.0, reason="no word in common"
            )
        doc = self.docs[ranked[0]]
        first = document_passages(doc)[0]
        return Assessment(
            language="und",
            reply_language="fi",
            answer=first.text,
            answer_language=first.lang,
            sources=(SourceRef(doc_id=doc.id, title=doc.title_in(first.lang), url=doc.url),),
            # Any hit answers: the same rule on every set.
            confidence=1.0,
            department=doc.departments[0] if doc.departments else None,
            reason=f"BM25 top {doc.id}",
            ranked_doc_ids=tuple(self.docs[i].id for i in ranked),
            scores={"bm25_top": round(float(scores[ranked[0]]), 4)},
        )


# --- Running the sets -----------------------------------------------------------------------


def check_data(data: Path) -> None:
    """Exit with a clear message (code 2) unless every set's files are there."""
    if not data.is_dir():
        _exit(f"no shared data folder at {data}: give the folder holding eval/ and kb/ with --data")
    missing = [
        f"{sub}/{name}"
        for s in SETS
        for sub, name in (("eval", s.questions), ("kb", s.kb))
        if not (data / sub / name).is_file()
    ]
    if missing:
        _exit(
            f"{data} lacks {', '.join(dict.fromkeys(missing))}: give the right folder with --data"
        )


def _exit(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def run_set(s: EvalSet, data: Path, *, cache: bool) -> dict[str, Figures]:
    """The offline agent as ``neuvonta eval`` runs it, then the baseline on the same input."""
    from agents.cli import (
        check_expected,
        eval_policy,
        read_kb_files,
        read_questions,
        run_questions,
    )
    from agents.evaluate import evaluate

    kb = [data / "kb" / s.kb]
    docs = read_kb_files(kb)
    qs = read_questions(data / "eval" / s.questions)
    check_expected(qs, docs)
    policy = eval_policy()
    _, offline = run_questions("offline", docs, kb, qs, policy, None, cache=cache, dense=True)
    baseline = asyncio.run(evaluate(Bm25Agent(docs), qs, policy))
    return {"offline agent": offline, "BM25 baseline": baseline}


def rows(results: dict[str, dict[str, Figures]]) -> list[list[str]]:
    from agents.cli import figure_cell

    return [
        [f"{name} ({f.questions})", agent, *(figure_cell(k, getattr(f, k)) for k, _ in COLUMNS)]
        for name, by_agent in results.items()
        for agent, f in by_agent.items()
    ]


def markdown(results: dict[str, dict[str, Figures]]) -> str:
    head = ["set (questions)", "agent", *(label for _, label in COLUMNS)]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---", *("---:" for _ in COLUMNS)]) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows(results)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with eval/ and kb/")
    ap.add_argument("--markdown", action="store_true", help="a Markdown table")
    ap.add_argument("--json", action="store_true", help="the figures as JSON")
    ap.add_argument(
        "--no-cache",
        action="store_true",
        help="passage vectors in a temporary folder (default: the user cache, as neuvonta eval)",
    )
    args = ap.parse_args()
    check_data(args.data)
    import click

    from agents.cli import FIGURE_KEYS, eval_policy

    results: dict[str, dict[str, Figures]] = {}
    try:
        for s in SETS:
            print(f"{s.name} …", file=sys.stderr)
            results[s.name] = run_set(s, args.data, cache=not args.no_cache)
    except click.exceptions.Exit as e:  # neuvonta eval's own error, already printed
        raise SystemExit(e.exit_code) from e
    caption = (
        f"default policy (threshold {eval_policy().default_threshold:g}) · "
        f"{datetime.now(UTC):%Y-%m-%d} · {os.cpu_count()} cores · python -m bench.eval_table"
    )
    if args.json:
        out: dict[str, Any] = {
            name: {agent: {k: getattr(f, k) for k in FIGURE_KEYS} for agent, f in by.items()}
            for name, by in results.items()
        }
        print(json.dumps(out, indent=2))
    elif args.markdown:
        print(markdown(results))
        print(f"\n{caption}")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(caption=caption)
        table.add_column("set (questions)")
        table.add_column("agent")
        for _, label in COLUMNS:
            table.add_column(label, justify="right")
        for r in rows(results):
            table.add_row(*r)
        Console().print(table)


if __name__ == "__main__":
    main()
