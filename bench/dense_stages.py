"""Answers as the dense vectors arrive: the dev figures at each stage of the vector indexer.

    python -m bench.dense_stages [--data ../shared/data]

After a start on a new knowledge base the agent ranks lexically until every title and first
passage has its e5 vector (the indexer embeds those first), then with the vectors there are.
This builds the PTV agent as ``neuvonta eval`` does (all vectors, from the cache), then hides
the vectors the indexer would not have computed yet at each stage, in the indexer's own
order, and runs municipal-dev, clinc-oos-val and the synthetic PTV questions through the same
triage and ``decide()`` at the default policy.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.eval_table import DEFAULT_DATA, PTV, check_data

if TYPE_CHECKING:
    from agents.evaluate import Report

SYNTHETIC = Path(__file__).resolve().parents[1] / "tests/unit/agents/data"
SETS = (
    ("municipal-dev", "eval/municipal-dev.questions.jsonl"),
    ("clinc-oos-val", "eval/clinc-oos-val.questions.jsonl"),
    ("synthetic-ptv", "synthetic-ptv.questions.jsonl"),
)


def stages(first: int, total: int) -> list[tuple[str, int]]:
    """(label, how many vectors exist) in the indexer's order."""
    rest = total - first
    return [
        ("none (lexical)", 0),
        ("half of the first", first // 2),
        ("titles + first passages", first),
        ("+ 25 % of the rest", first + rest // 4),
        ("+ 50 % of the rest", first + rest // 2),
        ("complete", total),
    ]


@dataclass(frozen=True)
class Stage:
    label: str
    ready: float  # share of the vectors there
    dense: bool  # whether dense ranking has joined
    reports: dict[str, Report]  # by question set


def measure(data: Path) -> list[Stage]:
    from agents.cli import eval_policy, offline_eval_agent, read_questions
    from agents.evaluate import evaluate

    agent = offline_eval_agent([data / "kb" / PTV])
    assert agent.dense is not None
    dense = agent.dense
    if not dense.complete:
        raise SystemExit(f"dense indexing failed: {dense.error}")
    order = dense.fill_order()
    policy = eval_policy()
    question_sets = {
        name: read_questions(SYNTHETIC / path if name == "synthetic-ptv" else data / path)
        for name, path in SETS
    }
    out: list[Stage] = []
    for label, count in stages(dense.first_count, len(order)):
        print(f"{label} …", file=sys.stderr)
        # The indexer thread has finished: what the agent may use is only this mask.
        dense.ready[:] = False
        dense.ready[order[:count]] = True
        reports = {
            name: asyncio.run(evaluate(agent, qs, policy)) for name, qs in question_sets.items()
        }
        out.append(Stage(label, round(dense.fraction, 3), dense.usable, reports))
    return out


def _pc(r: Report) -> str:
    return f"{r.answer_precision:.2f} / {r.coverage:.2f}" if r.answer_precision else "– / 0.00"


def _far(r: Report) -> str:
    return f"{r.false_answer_rate:.2f}" if r.false_answer_rate is not None else "–"


def markdown(rows: list[Stage]) -> str:
    lines = [
        "| vectors there | share | ranking | municipal-dev P / cov | municipal-dev false "
        "answers | clinc-oos-val false answers | synthetic-ptv P / cov |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {100 * r.ready:.0f} % | "
            f"{'dense + lexical' if r.dense else 'lexical'} | {_pc(r.reports['municipal-dev'])} | "
            f"{_far(r.reports['municipal-dev'])} | {_far(r.reports['clinc-oos-val'])} | "
            f"{_pc(r.reports['synthetic-ptv'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with eval/ and kb/")
    args = ap.parse_args()
    check_data(args.data)
    print(markdown(measure(args.data)))
    print(f"\ndefault policy · {datetime.now(UTC):%Y-%m-%d} · python -m bench.dense_stages")


if __name__ == "__main__":
    main()
