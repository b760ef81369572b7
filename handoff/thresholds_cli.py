"""``neuvonta thresholds``: show and change the handoff thresholds and rules.

The same as the admin API: the change is recorded in the database (with who, when, old,
new and the note) and put into the NATS KV entry the running workers watch, so they use it
within moments. NATS is ``NATS_URL``, else the embedded server of a ``serve`` running on the
same data folder (its ``serve.json``); with neither reachable the change goes into the
database only, and workers take it at their next start. Exit codes: 0 done, 1 the database
failed, 2 bad input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from router.cli_support import (
    DataDir,
    connect_nats,
    fail,
    nats_url_for,
    print_table,
    queues_of,
    run_on_database,
    settings_for,
)
from router.cli_support import note as tell

# The database and NATS modules load inside the commands: `neuvonta --help` does not pay.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from handoff.policy_store import PolicyStore, Saved
    from handoff.queues import Queue
    from handoff.thresholds import ThresholdState
    from router.settings import Settings

T = TypeVar("T")

thresholds_app = typer.Typer(
    help="Handoff thresholds and rules (live in running workers): show, set.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


async def _connect(url: str | None) -> Any:
    """A NATS connection, or None when there is no NATS to reach."""
    if url is None:
        return None
    try:
        return await connect_nats(url)
    except Exception:  # no server there (any of the client's several ways of saying so)
        return None


def _with_store(
    settings: Settings,
    queues: tuple[Queue, ...],
    work: Callable[[PolicyStore], Awaitable[T]],
    *,
    nats: bool = False,
) -> tuple[T, bool]:
    """Run ``work`` on the configured database; ``nats``: also on NATS when reachable.

    Returns what ``work`` returned and whether NATS was reached.
    """
    from handoff.policy_store import PolicyStore
    from router.app import initial_policy

    async def on(engine: AsyncEngine) -> tuple[T, bool]:
        nc = await _connect(nats_url_for(settings)) if nats else None
        try:
            store = PolicyStore(
                engine,
                initial_policy(settings, queues),
                queues=[q.name for q in queues],
                js=nc.jetstream() if nc is not None else None,
                replicas=settings.jetstream_replicas,
            )
            return await work(store), nc is not None
        finally:
            if nc is not None:
                await nc.close()

    return run_on_database(settings, on)


def _when(state: ThresholdState) -> str:
    if state.changed_at is None:
        return "the configured default (never changed)"
    at = state.changed_at.astimezone().strftime("%Y-%m-%d %H:%M")
    return f"changed by {state.changed_by} at {at}"


@thresholds_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, as the API")] = False,
    data_dir: DataDir = None,
) -> None:
    """Show the thresholds and rules in use (from the database)."""

    async def work(store: PolicyStore) -> ThresholdState:
        return await store.current()

    settings = settings_for(data_dir)
    queues = queues_of(settings)
    state, _ = _with_store(settings, queues, work)
    if as_json:
        typer.echo(state.model_dump_json())
        return
    out = Console(soft_wrap=True)
    out.print(
        f"Thresholds version {state.version}, {escape(_when(state))}.\n"
        f"Default threshold: {state.default:g} (minimum confidence for an automatic answer; "
        "1: the AI never answers on its own)"
    )

    def row(q: Queue) -> tuple[str, str, str]:
        value = state.queues.get(q.name)
        shown = f"{state.default:g} (default)" if value is None else f"{value:g}"
        return q.name, shown, "yes" if q.name in state.always_handoff else "no"

    print_table(("queue", "threshold", "always to a person"), map(row, queues), out=out)


def _parse_queue_values(items: list[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in items:
        name, sep, raw = item.rpartition("=")
        if not sep or not name:
            fail(f"--queue takes QUEUE=THRESHOLD, e.g. housing=0.8 (got {item!r})")
        try:
            values[name.strip()] = float(raw)
        except ValueError:
            fail(f"--queue {item}: the threshold is a number from 0 to 1")
    return values


@thresholds_app.command("set")
def set_thresholds(
    by: Annotated[str, typer.Option("--by", help="Who makes the change (kept in the history)")],
    default: Annotated[
        float | None, typer.Option("--default", help="The default threshold (0–1)")
    ] = None,
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", help="QUEUE=THRESHOLD for one queue, e.g. health=0.8 (repeat)"),
    ] = None,
    clear_queue: Annotated[
        list[str] | None,
        typer.Option("--clear-queue", help="QUEUE uses the default threshold again (repeat)"),
    ] = None,
    always_handoff: Annotated[
        list[str] | None,
        typer.Option("--always-handoff", help="People always answer in QUEUE (repeat)"),
    ] = None,
    no_always_handoff: Annotated[
        list[str] | None,
        typer.Option("--no-always-handoff", help="The AI may answer in QUEUE again (repeat)"),
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="Why (kept in the history)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Change thresholds and rules; what is not mentioned stays as it is.

    For example: neuvonta thresholds set --queue health=0.8 --always-handoff social --by anna
    --note "pilot week"
    """
    from handoff.policy_store import StaleVersion
    from handoff.thresholds import (
        InvalidThresholds,
        Thresholds,
        describe,
        diff,
        merge,
        unknown_names,
    )

    settings = settings_for(data_dir)
    queues = queues_of(settings)
    known = [q.name for q in queues]
    values = _parse_queue_values(queue or [])
    named = [*(clear_queue or []), *(always_handoff or []), *(no_always_handoff or [])]
    if problems := unknown_names(named, known):
        fail("; ".join(p.msg for p in problems))
    both = set(always_handoff or []) & set(no_always_handoff or [])
    if both:
        fail(f"both --always-handoff and --no-always-handoff for {', '.join(sorted(both))}")
    if default is None and not (values or named):
        fail("nothing to change: give --default, --queue, --clear-queue or --always-handoff")

    def change(current: Thresholds) -> Thresholds:
        return merge(
            current,
            default=default,
            queues=values,
            clear_queues=clear_queue or [],
            always_handoff=always_handoff or [],
            no_always_handoff=no_always_handoff or [],
        )

    async def work(store: PolicyStore) -> tuple[Saved, str]:
        for _ in range(5):  # a change made meanwhile: apply ours on top of it
            before = await store.current()
            try:
                saved = await store.save(change, by=by, note=note, based_on=before.version)
            except StaleVersion:
                continue
            return saved, describe(diff(before.thresholds, saved.state.thresholds))
        raise StaleVersion(await store.current(), None)

    try:
        (saved, what), reached = _with_store(settings, queues, work, nats=True)
    except InvalidThresholds as e:
        fail("; ".join(p.msg for p in e.problems))
    except StaleVersion as e:
        fail(str(e), 1)
    state = saved.state
    if not saved.changed:
        typer.echo(f"nothing changed: the thresholds are so already (version {state.version})")
        return
    typer.echo(f"thresholds version {state.version} by {state.changed_by}: {what}")
    if saved.live:
        typer.echo("running workers use it now")
    elif reached:
        tell(
            "saved in the database, but NATS KV did not take it: running workers pick it up "
            "at their next start"
        )
    else:
        tell(
            "no NATS reachable (NATS_URL, or a running serve on this data folder): saved in "
            "the database only; running workers pick it up at their next start"
        )
