"""Schema migrations (alembic): new databases, data folders from before migrations, and
migrations that say exactly what the models say."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlmodel import SQLModel

from router.db import _config, create_engine, create_schema, current_revision


async def test_a_new_database_is_at_the_newest_revision_also_when_processes_start_at_once(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        revisions = await asyncio.gather(*(create_schema(engine) for _ in range(3)))
        assert len(set(revisions)) == 1
        async with engine.connect() as conn:
            assert await conn.run_sync(current_revision) == revisions[0]
    finally:
        await engine.dispose()


async def test_a_data_folder_from_before_migrations_gets_its_missing_columns_and_a_revision(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
            await conn.execute(text("DROP INDEX ix_message_provider_message_id"))
            await conn.execute(text("ALTER TABLE message DROP COLUMN provider_message_id"))
            await conn.execute(text("ALTER TABLE conversation DROP COLUMN thread"))
        revision = await create_schema(engine)
        async with engine.connect() as conn:
            columns, indexes, now = await conn.run_sync(_inspect)
        assert "provider_message_id" in columns["message"]
        assert "thread" in columns["conversation"]
        assert "ix_message_provider_message_id" in indexes
        assert now == revision
    finally:
        await engine.dispose()


async def test_the_migrations_build_exactly_the_schema_the_models_describe(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            # Through the migrations only (no create_all), as an existing database upgrades.
            await conn.run_sync(_migrate_only)
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
        assert diff == [], "a model changed without a migration (alembic revision --autogenerate)"
    finally:
        await engine.dispose()


def _migrate_only(conn: Connection) -> None:
    from alembic import command

    command.upgrade(_config(conn), "head")


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


def _inspect(conn: Connection) -> tuple[dict[str, set[str]], set[str], str | None]:
    i = inspect(conn)
    columns = {t: {c["name"] for c in i.get_columns(t)} for t in ("message", "conversation")}
    indexes = {str(x["name"]) for x in i.get_indexes("message")}
    return columns, indexes, current_revision(conn)
