"""One active ticket per conversation (two workers handing off one conversation at once).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 02:48:02.157418
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    twice = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT conversation_id FROM ticket WHERE status IN ('open', 'claimed', 'waiting') "
                "GROUP BY conversation_id HAVING COUNT(*) > 1"
            )
        )
        .scalars()
        .all()
    )
    if twice:
        raise RuntimeError(
            "conversations with more than one active ticket (resolve all but one in the "
            f"console, then start again): {', '.join(twice[:20])}"
        )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.create_index(
            "uq_ticket_active_conversation",
            ["conversation_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('open', 'claimed', 'waiting')"),
            postgresql_where=sa.text("status IN ('open', 'claimed', 'waiting')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_ticket_active_conversation",
            sqlite_where=sa.text("status IN ('open', 'claimed', 'waiting')"),
            postgresql_where=sa.text("status IN ('open', 'claimed', 'waiting')"),
        )
