"""deliveries carry their event's feed position; indexes for the FIFO lease

Revision ID: 0008_deliveries_feed_order
Revises: 0007_trace_context
Create Date: 2026-11-30

A FIFO subscription's head is its oldest pending delivery in feed order (the event's tx, seq).
Copying the position into the delivery row lets one index, (subscription_id, status, event_tx,
event_seq), hand the head over without reading or sorting the backlog; it replaces
(subscription_id, status), whose lookups it still serves. A small partial index of the leased
rows answers "does this subscription have a delivery in flight" without the backlog either.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_deliveries_feed_order"
down_revision = "0007_trace_context"
branch_labels = None
depends_on = None

LEASED = "lease_token IS NOT NULL AND status = 'pending'"


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("event_tx", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("event_seq", sa.BigInteger(), server_default="0", nullable=False)
        )
    # Every delivery has its event (a foreign key, ON DELETE CASCADE); 0 only if one has not.
    op.execute(
        "UPDATE deliveries SET"
        " event_tx = coalesce((SELECT e.tx FROM events AS e"
        " WHERE e.id = deliveries.event_id), 0),"
        " event_seq = coalesce((SELECT e.seq FROM events AS e"
        " WHERE e.id = deliveries.event_id), 0)"
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_subscription")
        batch_op.create_index(
            "ix_deliveries_subscription_feed",
            ["subscription_id", "status", "event_tx", "event_seq"],
            unique=False,
        )
        batch_op.create_index(
            "ix_deliveries_leased",
            ["subscription_id"],
            unique=False,
            sqlite_where=sa.text(LEASED),
            postgresql_where=sa.text(LEASED),
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_deliveries_leased",
            sqlite_where=sa.text(LEASED),
            postgresql_where=sa.text(LEASED),
        )
        batch_op.drop_index("ix_deliveries_subscription_feed")
        batch_op.create_index(
            "ix_deliveries_subscription", ["subscription_id", "status"], unique=False
        )
        batch_op.drop_column("event_seq")
        batch_op.drop_column("event_tx")
