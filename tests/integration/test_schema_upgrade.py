"""A data folder from an older version gets the columns added since (until migrations)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from router.db import create_engine, create_schema


async def test_missing_nullable_columns_and_their_indexes_are_added(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await create_schema(engine)
        async with engine.begin() as conn:
            await conn.execute(text("DROP INDEX ix_message_provider_message_id"))
            await conn.execute(text("ALTER TABLE message DROP COLUMN provider_message_id"))
            await conn.execute(text("ALTER TABLE conversation DROP COLUMN thread"))
        await create_schema(engine)
        async with engine.connect() as conn:
            columns, indexes = await conn.run_sync(
                lambda c: (
                    {
                        t: {col["name"] for col in inspect(c).get_columns(t)}
                        for t in ("message", "conversation")
                    },
                    {i["name"] for i in inspect(c).get_indexes("message")},
                )
            )
        assert "provider_message_id" in columns["message"]
        assert "thread" in columns["conversation"]
        assert "ix_message_provider_message_id" in indexes
    finally:
        await engine.dispose()
