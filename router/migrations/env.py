"""Alembic's environment: migrations run on a connection the caller gives
(``router.db.create_schema``), on SQLite in batch mode (it cannot alter columns in place)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import router.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
