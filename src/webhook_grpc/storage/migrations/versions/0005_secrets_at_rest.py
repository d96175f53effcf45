"""secrets at rest: seal plain-text subscription secrets; Ed25519 columns

Revision ID: 0005_secrets_at_rest
Revises: 0003_filters_headers
Create Date: 2026-11-30

The upgrade seals every plain-text secret with the first configured key, so it needs the keys:
storage/migrate.py hands over the SecretBox. The downgrade opens them again (plain text, the
threat this revision closes comes back) and refuses while Ed25519 subscriptions exist, which the
old schema cannot describe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from webhook_grpc.encryption import SecretBox
from webhook_grpc.storage.migrations.sealing import secret_box, subscription_secrets

revision = "0005_secrets_at_rest"
down_revision = "0003_filters_headers"
branch_labels = None
depends_on = None

_subscriptions = subscription_secrets


def _box() -> SecretBox:
    return secret_box(revision)


def upgrade() -> None:
    plain = _plain_rows()
    # Before any DDL: SQLite (pysqlite) commits ALTER TABLE at once, so failing later would
    # leave the schema half-upgraded.
    box = _box() if plain else None  # None: nothing to seal
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(
            sa.Column(
                "signing_algorithm",
                sa.String(length=16),
                server_default="hmac_sha256",
                nullable=False,
            )
        )
        batch.add_column(sa.Column("public_key", sa.Text(), nullable=True))
    if box is not None:
        _rewrite(plain, box.reseal)


def downgrade() -> None:
    conn = op.get_bind()
    t = _subscriptions
    ed25519 = conn.execute(
        sa.select(sa.func.count()).select_from(t).where(t.c.signing_algorithm != "hmac_sha256")
    ).scalar_one()
    if ed25519:
        raise RuntimeError(
            f"{ed25519} Ed25519 subscriptions exist; delete them before downgrading below "
            "0005_secrets_at_rest"
        )
    rows = list(conn.execute(sa.select(t.c.id, t.c.secret, t.c.previous_secret)).all())
    box = _box() if rows else None  # None: nothing to open
    if box is not None:
        _rewrite(rows, box.open)
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("public_key")
        batch.drop_column("signing_algorithm")


def _plain_rows() -> list[Any]:
    t = _subscriptions
    unsealed = sa.or_(
        t.c.secret.not_like("whenc:%"),
        sa.and_(t.c.previous_secret.is_not(None), t.c.previous_secret.not_like("whenc:%")),
    )
    query = sa.select(t.c.id, t.c.secret, t.c.previous_secret).where(unsealed)
    return list(op.get_bind().execute(query).all())


def _rewrite(rows: list[Any], change: Callable[[str, str], str]) -> None:
    """Each row's secrets replaced by `change(value, subscription id)`."""
    t = _subscriptions
    for row in rows:
        previous = row.previous_secret and change(row.previous_secret, row.id)
        op.get_bind().execute(
            sa.update(t)
            .where(t.c.id == row.id)
            .values(secret=change(row.secret, row.id), previous_secret=previous)
        )
