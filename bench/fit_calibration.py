"""Refit the offline agent's dense confidence model, as agents/RETRIEVAL.md describes it.

    python -m bench.fit_calibration [--data ../shared/data]

Fit rows: the synthetic PTV questions (tests/unit/agents/data, written for this work) and
clinc-oos-val ids 000–049, against the PTV knowledge base; a row is right when the top
document is an expected one (never, for questions nobody should answer). municipal-dev and
clinc 050–099 stay out of the fit. Prints a ``Calibration(...)`` to paste into
agents/retrieval.py (run it again whenever the embedding model or the ranking changes) and
the held-out figures it gives.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bench.dense_stages import SYNTHETIC
from bench.eval_table import DEFAULT_DATA, PTV, check_data

FEATURES = ("dense_top", "fused_gap", "title_agree", "title_of_best")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with eval/ and kb/")
    args = ap.parse_args()
    check_data(args.data)

    from agents import retrieval
    from agents.base import Intent
    from agents.cli import eval_policy, offline_eval_agent, read_questions
    from agents.evaluate import Question, evaluate, fit_calibration

    agent = offline_eval_agent([args.data / "kb" / PTV])
    clinc = read_questions(args.data / "eval/clinc-oos-val.questions.jsonl")
    fit_set = [
        *read_questions(SYNTHETIC / "synthetic-ptv.questions.jsonl"),
        *(q for q in clinc if int(q.id.rsplit("-", 1)[-1]) < 50),
    ]
    held_out = {
        "municipal-dev": read_questions(args.data / "eval/municipal-dev.questions.jsonl"),
        "clinc 050-099": [q for q in clinc if int(q.id.rsplit("-", 1)[-1]) >= 50],
    }
    policy = eval_policy()

    def rows(qs: list[Question]) -> list[tuple[dict[str, float], bool]]:
        report = asyncio.run(evaluate(agent, qs, policy))
        return [
            (
                dict(o.assessment.scores),
                bool(o.assessment.ranked_doc_ids[:1])
                and o.assessment.ranked_doc_ids[0] in o.question.expected_docs,
            )
            for o in report.outcomes
            if o.assessment.intent is Intent.QUESTION and "dense_top" in o.assessment.scores
        ]

    fit_rows = rows(fit_set)
    model = fit_calibration(fit_rows, fit_rows, FEATURES)
    print(f"{len(fit_rows)} fit rows ({sum(ok for _, ok in fit_rows)} right)\n")
    print(f"DENSE_CALIBRATION = {model!r}\n")
    retrieval.DENSE_CALIBRATION = model  # for the held-out figures below only
    for name, qs in held_out.items():
        r = asyncio.run(evaluate(agent, qs, policy))
        print(
            f"{name}: precision {r.answer_precision} coverage {r.coverage} "
            f"false answers {r.false_answer_rate}"
        )


if __name__ == "__main__":
    main()
