"""events.rules_version: the version of the entity's rules an event was projected with

Revision ID: 0009_entity_rules_version
Revises: 0008_deliveries_feed_order
Create Date: 2026-11-30

The feed and the dispatcher project each stored event again with the entity's current rules (a
field reclassified as confidential since publishing must disappear). Publishing now stores the
version (domain/projection.py's rules_version) of the rules it projected with, and a reader
skips the second projection while the entity's rules still give that version. Rows stored
before have none and are always projected again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_entity_rules_version"
down_revision = "0008_deliveries_feed_order"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable without a default: adding it rewrites no row on either engine.
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rules_version", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("rules_version")
