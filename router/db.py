"""Database engine: URL handling, SQLite tuning, dialect-neutral insert-or-ignore."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert
from sqlmodel import SQLModel

import router.tables  # noqa: F401  (registers the tables on SQLModel.metadata)


def async_url(url: str) -> str:
    """Accept the usual ``postgresql://`` / ``sqlite:///`` forms and pick the async driver."""
    u = make_url(url)
    driver = {
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
        "sqlite": "sqlite+aiosqlite",
    }.get(u.drivername)
    if driver:
        u = u.set(drivername=driver)
    return u.render_as_string(hide_password=False)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _tune_sqlite(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (the web) run beside the writer (the router); NORMAL is durable
    # across process crashes, which is what we need (power loss may lose the last commit).
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_engine(url: str) -> AsyncEngine:
    url = async_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


async def create_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
        await conn.run_sync(_add_missing_columns)


def _add_missing_columns(conn: Connection) -> None:
    """Give tables of an older data folder the nullable columns added since.

    ``create_all`` creates missing tables but never alters existing ones. Until schema
    migrations exist (alembic), new columns are nullable and added here.
    """
    inspector = inspect(conn)
    for table in SQLModel.metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable:
                raise RuntimeError(f"cannot add the required column {table.name}.{column.name}")
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
            if column.index:
                conn.execute(
                    text(
                        f'CREATE INDEX IF NOT EXISTS "ix_{table.name}_{column.name}" '
                        f'ON "{table.name}" ("{column.name}")'
                    )
                )


def insert_ignore(conn: AsyncConnection, table: Table) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"unsupported database dialect {conn.dialect.name}")


async def insert_many_ignore(
    conn: AsyncConnection, table: Table, rows: Iterable[Mapping[str, Any]]
) -> None:
    batch = list(rows)
    if batch:
        await conn.execute(insert_ignore(conn, table), batch)
