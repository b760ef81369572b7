"""``neuvonta db``: the database schema (alembic migrations in ``router/migrations``).

Every process also upgrades at start; this is for doing it ahead of a rollout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from router.cli_support import DataDir, run_on_database, safe_url, settings_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)


@db_app.command()
def upgrade(data_dir: DataDir = None) -> None:
    """Bring the database (DATABASE_URL or the data folder's SQLite) to the newest schema."""
    settings = settings_for(data_dir)
    revision = run_on_database(settings, _revision)
    typer.echo(f"{safe_url(settings.database)}: schema at revision {revision} (newest)")


@db_app.command()
def current(data_dir: DataDir = None) -> None:
    """The database's schema revision, without changing anything."""
    settings = settings_for(data_dir)
    revision = run_on_database(settings, _revision, upgrade=False)
    typer.echo(revision or "none (an empty database)")


async def _revision(engine: AsyncEngine) -> str | None:
    from router.db import current_revision

    async with engine.connect() as conn:
        return await conn.run_sync(current_revision)
