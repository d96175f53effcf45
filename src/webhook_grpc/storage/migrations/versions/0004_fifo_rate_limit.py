"""FIFO ordering and shared rate limits per subscription (SPEC §11)

Revision ID: 0004_fifo_rate_limit
Revises: 0005_secrets_at_rest
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from webhook_grpc.storage.tables.base import UtcDateTime

revision = "0004_fifo_rate_limit"
down_revision = "0005_secrets_at_rest"
branch_labels = None
depends_on = None

CONTROLLED = "ordering = 'fifo' OR rate_limit_per_second > 0"


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ordering", sa.String(length=16), server_default="unordered", nullable=False)
        )
        batch_op.add_column(
            sa.Column("rate_limit_per_second", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("next_slot_at", UtcDateTime(), nullable=True))
        batch_op.create_index(
            "ix_subscriptions_controlled",
            ["id"],
            unique=False,
            sqlite_where=sa.text(CONTROLLED),
            postgresql_where=sa.text(CONTROLLED),
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_subscriptions_controlled",
            sqlite_where=sa.text(CONTROLLED),
            postgresql_where=sa.text(CONTROLLED),
        )
        batch_op.drop_column("next_slot_at")
        batch_op.drop_column("rate_limit_per_second")
        batch_op.drop_column("ordering")
