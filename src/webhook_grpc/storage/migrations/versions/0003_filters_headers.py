"""subscription filters and custom headers (SPEC §11)

Revision ID: 0003_filters_headers
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_filters_headers"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Server defaults fill the rows that exist: no filter, no extra headers.
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("filter", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("headers", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("headers")
        batch.drop_column("filter")
