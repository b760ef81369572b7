"""Database engine: URL handling, SQLite tuning, dialect-neutral insert-or-ignore."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
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


MIGRATIONS = Path(__file__).parent / "migrations"
# Serialises schema changes of processes starting at once on PostgreSQL (any constant).
_SCHEMA_LOCK = 7_311_046_001


async def create_schema(engine: AsyncEngine) -> str:
    """Bring the database to the newest schema (alembic head); returns the revision.

    Every process calls this at start; concurrent starts wait for each other (an advisory
    lock on PostgreSQL, the write lock on SQLite).
    """
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # The write lock first, so a second process waits before it reads the revision.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        revision = await conn.run_sync(_upgrade)
        await conn.commit()
        return revision


def _config(conn: Connection | None = None) -> Config:
    """Alembic's configuration: our migrations, run on ``conn`` (``migrations/env.py``)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest migration's revision."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _upgrade(conn: Connection) -> str:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
    cfg = _config(conn)
    if current_revision(conn) is None:
        ours = set(SQLModel.metadata.tables) & set(inspect(conn).get_table_names())
        # A new database: create the tables as the models say and record that (alembic's
        # own recipe). A data folder from before migrations (November 2026): add what it
        # lacks of the models (tables, nullable columns, indexes), then the same.
        SQLModel.metadata.create_all(conn)
        if ours:
            _add_missing_columns(conn)
        command.stamp(cfg, "head")
    command.upgrade(cfg, "head")
    revision = current_revision(conn)
    assert revision is not None
    return revision


def _add_missing_columns(conn: Connection) -> None:
    """Nullable columns and indexes added since, for data folders from before migrations."""
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
    for table in SQLModel.metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


def insert_ignore(conn: AsyncConnection, table: Table) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` for the connection's dialect."""
    return _insert_ignore(conn.dialect.name, table)


@cache
def _insert_ignore(dialect: str, table: Table) -> Insert:
    # Built once per table: statements are immutable, and building one costs more than
    # running it (see router.store).
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"unsupported database dialect {dialect}")


async def insert_many_ignore(
    conn: AsyncConnection, table: Table, rows: Iterable[Mapping[str, Any]]
) -> None:
    batch = list(rows)
    if batch:
        await conn.execute(insert_ignore(conn, table), batch)
