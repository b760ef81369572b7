"""``neuvonta residents`` (one resident's data: export, delete) and ``neuvonta retention``
(delete what is past the retention period).

Work on the running system's database, as ``serve`` (``--data-dir`` / ``DATABASE_URL``).
What is exported, deleted and kept, and why: ``handoff.retention``. Exit codes: 0 done,
1 the database failed, the deletion was not confirmed or the message streams could not be
reached, 2 bad input.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from router.cli_support import (
    DataDir,
    connect_nats,
    fail,
    nats_url_for,
    note,
    print_table,
    run_on_database,
    settings_for,
    warn,
)

# The database modules load inside the commands: `neuvonta --help` does not pay for them.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from handoff.retention import ResidentDeletion, RetentionReport
    from router.events import Address
    from router.settings import Settings

residents_app = typer.Typer(
    help="One resident's data, on request: export it as JSON, or delete it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
retention_app = typer.Typer(
    help="Delete conversations past the retention period (NEUVONTA_RETENTION_*_DAYS).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

AddressArgument = Annotated[
    str,
    typer.Argument(
        metavar="ADDRESS",
        help="The resident's address: sms:+358401234567, whatsapp:+358…, email:a@b.fi, "
        "telegram:<chat id> or web:<chat session id>",
        show_default=False,
    ),
]


def _address(text: str) -> Address:
    from handoff.retention import parse_address

    try:
        return parse_address(text)
    except ValueError as e:
        fail(str(e))


@residents_app.command(
    "export",
    help="Print everything stored about a resident as JSON: their conversations on this "
    "address and, for a phone number or an email address, on the other channels too, with "
    "every message, ticket, its timeline and the AI's decisions.",
)
def export(address: AddressArgument, data_dir: DataDir = None) -> None:
    from handoff.retention import export_resident

    resident = _address(address)

    async def work(engine: AsyncEngine) -> dict[str, Any]:
        return await export_resident(engine, resident)

    data = run_on_database(settings_for(data_dir), work)
    if not data["conversations"] and not data["opt_outs"]:
        note(f"nothing is stored for {resident}")
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _summary(deletion: ResidentDeletion) -> str:
    from handoff.retention import counts

    return counts(deletion.deleted)


@residents_app.command(
    "delete",
    help="Delete everything stored about a resident (what `export` shows). An opt-out "
    "(SMS STOP) is kept: it is their instruction not to be messaged.",
)
def delete(
    address: AddressArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    data_dir: DataDir = None,
) -> None:
    from handoff.retention import delete_resident

    resident = _address(address)
    settings = settings_for(data_dir)

    def run(dry_run: bool) -> ResidentDeletion:
        async def work(engine: AsyncEngine) -> ResidentDeletion:
            return await delete_resident(engine, resident, dry_run=dry_run)

        return run_on_database(settings, work)

    if not yes:
        planned = run(dry_run=True)
        if not planned.total:
            typer.echo(f"nothing to delete for {resident}")
            _erase_stream_copies(settings, planned.needles)
            return
        typer.echo(f"This deletes, for {resident}: {_summary(planned)}.")
        if planned.active_cases:
            typer.echo(f"Cases still being worked on: {', '.join(planned.active_cases)}.")
        if not typer.confirm("Delete?", default=False):
            fail("nothing deleted", 1)
    done = run(dry_run=False)
    if not done.total:
        typer.echo(f"nothing to delete for {resident}")
    else:
        typer.echo(f"deleted for {resident}: {_summary(done)}")
    if done.opt_outs_kept:
        typer.echo(f"kept: the opt-out of {resident} (they asked for no more messages)")
    _erase_stream_copies(settings, done.needles)


def _erase_stream_copies(settings: Settings, needles: tuple[str, ...]) -> None:
    """The resident's events still in the JetStream streams: on the configured NATS, the
    running ``serve``'s embedded one, or the data folder's, started for the purpose."""
    import asyncio

    from router.bus import DAY, erase_events, stream_ages
    from router.embedded import EmbeddedNats
    from router.subjects import Stream

    async def erase(url: str) -> dict[str, int]:
        nc = await connect_nats(url)
        try:
            return await erase_events(nc.jetstream(), needles)
        finally:
            await nc.close()

    url = nats_url_for(settings)
    embedded: EmbeddedNats | None = None
    if url is None:
        folder = settings.data_dir / "nats"
        if not folder.exists():
            return  # no streams were ever kept here
        embedded = EmbeddedNats(folder)
        url = embedded.start()
    try:
        erased = asyncio.run(erase(url))
    except Exception as e:
        days = {s: round(age / DAY) for s, age in stream_ages(settings.longest_stream_age).items()}
        warn(
            f"could not erase the copies in the message streams ({type(e).__name__}); "
            f"they expire by themselves within {days[Stream.CONVERSATIONS]} days (dead "
            f"letters {days[Stream.DEADLETTER]}): run the command again when NATS answers"
        )
        raise typer.Exit(1) from None
    finally:
        if embedded is not None:
            embedded.stop()
    total = sum(erased.values())
    typer.echo(
        f"erased from the message streams: {total} events"
        + (" (" + ", ".join(f"{n} in {s}" for s, n in erased.items() if n) + ")" if total else "")
    )


def _print_report(report: RetentionReport) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    if not report.deleted:
        typer.echo(f"retention: nothing to delete{' (dry run)' if report.dry_run else ''}")
    else:
        print_table(
            ("table", verb, "kept anonymised"),
            (
                (name, str(report.deleted.get(name, 0)), str(report.anonymised.get(name, 0)))
                for name in sorted(set(report.deleted) | set(report.anonymised))
            ),
            right=(verb, "kept anonymised"),
        )
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(report.conversations.items()))
        if kinds:
            typer.echo(f"conversations past their limit: {kinds}")
    if report.kept_active:
        typer.echo(f"kept: {report.kept_active} old conversations with a case still active")


@retention_app.command(
    "run",
    help="Delete now what is past the retention period (serve does it every hour): web chats "
    "after NEUVONTA_RETENTION_WEB_DAYS, SMS, WhatsApp, Telegram and email after "
    "NEUVONTA_RETENTION_CONTACT_DAYS (0: keep forever); never a conversation with a case "
    "still active.",
)
def run_retention_once(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be deleted")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    from handoff.retention import apply_retention
    from router.events import utcnow

    settings = settings_for(data_dir)

    async def work(engine: AsyncEngine) -> RetentionReport:
        return await apply_retention(engine, settings, utcnow(), dry_run=dry_run)

    _print_report(run_on_database(settings, work))
