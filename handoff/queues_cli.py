"""``neuvonta queues``: the queues in use, and a check of a queues file before it is used."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from router.cli_support import DataDir, fail, print_table, queues_of, settings_for

if TYPE_CHECKING:
    from handoff.hours import Span

queues_app = typer.Typer(help="Human queues: departments, working hours, response targets.")


@queues_app.command("show")
def show(
    as_toml: Annotated[
        bool, typer.Option("--toml", help="In the NEUVONTA_QUEUES_FILE format, to start one")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """The queues in use (NEUVONTA_QUEUES_FILE, else the built-in set)."""
    from handoff.queue_config import render_queues

    queues = queues_of(settings_for(data_dir))
    if as_toml:
        typer.echo(render_queues(queues), nl=False)
        return
    print_table(
        ("queue", "name (fi / sv / en)", "departments", "hours", "first response"),
        (
            (
                q.name,
                " / ".join(q.label.get(lang, "") for lang in ("fi", "sv", "en")),
                ", ".join(q.departments) or "–",
                _hours_text(q.hours.week),
                f"{q.first_response_minutes} min",
            )
            for q in queues
        ),
    )


@queues_app.command("check")
def check(path: Annotated[Path, typer.Argument(help="A queues file (TOML)")]) -> None:
    """Read a queues file and say what is wrong with it, or that it is fine (exit 0)."""
    from handoff.queue_config import QueueConfigError, parse_queues

    try:
        queues = parse_queues(path.read_text(encoding="utf-8"))
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    except QueueConfigError as e:
        fail(f"{path}:\n" + "\n".join(e.problems))
    typer.echo(f"{path}: {len(queues)} queues, fine ({', '.join(q.name for q in queues)})")


def _hours_text(week: tuple[Span | None, ...]) -> str:
    """``mon-fri 08:00-16:00, sat 10:00-14:00``: runs of days with the same hours together."""
    from handoff.queue_config import DAYS, shown

    runs: list[tuple[int, int, str]] = []
    for i, span in enumerate(week):
        text = shown(span)
        if runs and runs[-1][2] == text and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i, text)
        else:
            runs.append((i, i, text))
    parts = [
        f"{DAYS[a]}{'' if a == b else '-' + DAYS[b]} {text}"
        for a, b, text in runs
        if text != "closed"
    ]
    return ", ".join(parts) or "closed"
