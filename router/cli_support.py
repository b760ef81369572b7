"""What the ``neuvonta`` sub-commands share: the data folder option, messages, the database.

The database modules load inside ``run_on_database``: ``neuvonta --help`` does not pay for them.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from router.settings import Settings, nats_servers

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from sqlalchemy.ext.asyncio import AsyncEngine

    from handoff.queues import Queue

T = TypeVar("T")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data folder (NEUVONTA_DATA_DIR; default ./var)"),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Exit with a clear message: 2 for bad input, 1 for trouble with the system."""
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    Console(stderr=True).print(f"[yellow]note:[/] {escape(message)}", soft_wrap=True)


def warn(message: str) -> None:
    Console(stderr=True).print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def settings_for(data_dir: Path | None) -> Settings:
    """The environment's settings, with ``--data-dir`` when given."""
    settings = Settings()
    return settings.model_copy(update={"data_dir": data_dir}) if data_dir else settings


def queues_of(settings: Settings) -> tuple[Queue, ...]:
    """The configured queues, or a clear exit naming every problem of the queues file."""
    from handoff.queue_config import QueueConfigError
    from handoff.queues import queues_for

    try:
        return queues_for(settings)
    except QueueConfigError as e:
        fail(f"NEUVONTA_QUEUES_FILE {settings.queues_file}:\n" + "\n".join(e.problems))


def safe_url(url: str) -> str:
    """A database URL fit for a message: no password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def run_on_database(
    settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]], *, upgrade: bool = True
) -> T:
    """Run ``work`` on the configured database (SQLite in the data folder or DATABASE_URL),
    brought to the newest schema first unless ``upgrade`` is False."""
    from sqlalchemy.exc import SQLAlchemyError

    from router.db import create_engine, create_schema

    async def run() -> T:
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.database)
        try:
            if upgrade:
                await create_schema(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (OSError, SQLAlchemyError) as e:
        fail(f"cannot use the database {safe_url(settings.database)}: {e}", 1)


NATS_CONNECT_TIMEOUT = 2.0


def nats_url_for(settings: Settings) -> str | None:
    """``NATS_URL``, else the embedded server of a ``serve`` running on this data folder
    (its ``serve.json``); None when there is neither, or the ``serve`` that wrote the file
    is gone (it crashed, or was killed, before it could remove it)."""
    if settings.nats_url:
        return settings.nats_url
    try:
        runtime = json.loads((settings.data_dir / "serve.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(runtime, dict) or not _running(runtime.get("pid")):
        return None
    url = runtime.get("nats_url")
    return url if isinstance(url, str) and url else None


def _running(pid: object) -> bool:
    """Whether process ``pid`` exists (an unreadable pid counts as running: try its URL)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


async def connect_nats(url: str) -> NatsClient:
    """A NATS connection for a command, or the error: two tries, no reconnecting later (a
    ``serve.json`` left by a crashed serve names a server that is gone)."""
    import nats

    async def quiet(_e: Exception) -> None:
        """The caller reports the failure once, not a traceback a try."""

    # nats-py takes max_reconnect_attempts=0 as "for ever", also for the first connect.
    return await nats.connect(
        nats_servers(url),
        connect_timeout=NATS_CONNECT_TIMEOUT,
        allow_reconnect=False,
        max_reconnect_attempts=1,
        reconnect_time_wait=0.5,
        error_cb=quiet,
    )


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    right: Collection[str] = (),
    out: Console | None = None,
) -> None:
    """Rows under their column names, without borders (easy to read, and to grep); every
    cell is printed as it is, never read as markup. ``right``: the columns of numbers."""
    table = Table(box=None, pad_edge=False)
    for column in columns:
        table.add_column(escape(column), justify="right" if column in right else "left")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    (out or Console(soft_wrap=True)).print(table)
