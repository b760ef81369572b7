"""``neuvonta users``: the staff accounts of the agent console.

Works on the running system's database, as ``serve`` (``--data-dir`` / ``DATABASE_URL``);
changes apply at once, without a restart. Exit codes: 0 done, 1 the database failed,
2 bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from router.cli_support import (
    DataDir,
    fail,
    note,
    print_table,
    queues_of,
    run_on_database,
    settings_for,
)

# The database modules load inside the commands: `neuvonta --help` does not pay for them.
if TYPE_CHECKING:
    from handoff.staff import StaffStore
    from router.settings import Settings

T = TypeVar("T")

users_app = typer.Typer(
    help="Staff accounts of the agent console: add, list, disable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class RoleChoice(StrEnum):
    agent = "agent"
    admin = "admin"


def _with_store(settings: Settings, work: Callable[[StaffStore], Awaitable[T]]) -> T:
    from handoff.staff import StaffStore

    return run_on_database(settings, lambda engine: work(StaffStore(engine)))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line; only the line break is taken off (spaces may be part of a password).
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        fail("give the password on standard input with --password-stdin")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Sign-in name (lowercase a–z, 0–9, . _ @ -)")],
    role: Annotated[
        RoleChoice,
        typer.Option("--role", help="agent: sees their own queues; admin: sees every queue"),
    ],
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", help="A queue the agent works in (repeat for more)"),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from standard input (never give it on the command line)",
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Add a staff account.

    For example: printf '%s\\n' "$PW" | neuvonta users add anna --role agent --queue housing
    --password-stdin
    """
    from handoff.auth import hash_password, password_problem
    from handoff.staff import UserExists, normalize_username, username_problem

    name = normalize_username(username)
    if problem := username_problem(name):
        fail(problem)
    settings = settings_for(data_dir)
    known = [q.name for q in queues_of(settings)]
    queues = list(dict.fromkeys(queue or []))
    unknown = [q for q in queues if q not in known]
    if unknown:
        fail(f"unknown queue {', '.join(unknown)}; the queues are: {', '.join(known)}")
    if role is RoleChoice.agent and not queues:
        fail(f"an agent needs at least one --queue; the queues are: {', '.join(known)}")
    if role is RoleChoice.admin and queues:
        note("an admin sees every queue; the --queue options are kept for later")
    password = _read_password(password_stdin)
    if problem := password_problem(password):
        fail(problem)
    password_hash = hash_password(password)

    async def work(store: StaffStore) -> None:
        await store.add(name, password_hash, role.value, queues)

    try:
        _with_store(settings, work)
    except UserExists:
        fail(f"the user {name} exists already")
    shown = "every queue" if role is RoleChoice.admin else ", ".join(queues)
    typer.echo(f"added {name} ({role.value}; {shown})")


def _when(at: datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M") if at else "never"


@users_app.command("list")
def list_users(data_dir: DataDir = None) -> None:
    """List the staff accounts."""

    async def work(store: StaffStore) -> list[tuple[str, str, str, str, str]]:
        return [
            (
                u.username,
                u.role,
                "all" if u.is_admin else ", ".join(u.queues) or "–",
                "yes" if u.disabled else "no",
                _when(u.last_login_at),
            )
            for u in await store.all()
        ]

    rows = _with_store(settings_for(data_dir), work)
    if not rows:
        typer.echo("No staff accounts yet: add one with `neuvonta users add`.")
        return
    print_table(("username", "role", "queues", "disabled", "last login"), rows)


@users_app.command("disable")
def disable(
    username: Annotated[str, typer.Argument(help="The account to disable")],
    data_dir: DataDir = None,
) -> None:
    """Disable an account: it can no longer sign in, and its sessions end now."""
    from handoff.staff import normalize_username

    name = normalize_username(username)

    async def work(store: StaffStore) -> int | None:
        return await store.disable(name)

    ended = _with_store(settings_for(data_dir), work)
    if ended is None:
        fail(f"no such user: {name}")
    typer.echo(f"disabled {name}; ended {ended} session{'' if ended == 1 else 's'}")
