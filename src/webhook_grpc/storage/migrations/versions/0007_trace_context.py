"""events.trace_context: the publisher's W3C trace context, sent on with each delivery

Revision ID: 0007_trace_context
Revises: 0006_ed25519_shared_secret
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_trace_context"
down_revision = "0006_ed25519_shared_secret"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable without a default: adding it rewrites no row on either engine.
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trace_context", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("trace_context")
