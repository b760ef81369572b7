"""A PNG chart of a threshold sweep: answer precision, coverage and false answers per threshold.

matplotlib's object API on the Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from agents.evaluate import SweepPoint


def _series(points: Sequence[SweepPoint], name: str) -> list[float]:
    values = [getattr(p, name) for p in points]
    return [math.nan if v is None else float(v) for v in values]


def write_sweep_chart(
    points: Sequence[SweepPoint],
    path: Path,
    *,
    default_threshold: float,
    evaluated_threshold: float | None = None,
    title: str = "",
) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = [p.threshold for p in points]
    ax.plot(xs, _series(points, "answer_precision"), marker="o", ms=3, label="answer precision")
    ax.plot(xs, _series(points, "coverage"), marker="s", ms=3, label="coverage")
    far = _series(points, "false_answer_rate")
    if not all(math.isnan(v) for v in far):
        ax.plot(xs, far, marker="^", ms=3, linestyle="--", label="false-answer rate")
    ax.axvline(
        default_threshold,
        color="0.35",
        linestyle=":",
        label=f"default threshold {default_threshold:.2f}",
    )
    if evaluated_threshold is not None and evaluated_threshold != default_threshold:
        ax.axvline(
            evaluated_threshold,
            color="0.6",
            linestyle="-.",
            label=f"evaluated at {evaluated_threshold:.2f}",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("confidence threshold for an automatic answer")
    ax.set_ylabel("share of questions")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    fig.savefig(path, format="png")
    return path
