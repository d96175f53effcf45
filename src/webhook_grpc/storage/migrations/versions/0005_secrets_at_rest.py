"""secrets at rest: seal plain-text subscription secrets; Ed25519 columns

Revision ID: 0005_secrets_at_rest
Revises: 0001
Create Date: 2026-11-30

The upgrade seals every plain-text secret with the first configured key, so it needs the keys:
storage/migrate.py hands over the SecretBox. The downgrade opens them again (plain text, the
threat this revision closes comes back) and refuses while Ed25519 subscriptions exist, which the
old schema cannot describe.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0005_secrets_at_rest"
down_revision = "0001"
branch_labels = None
depends_on = None

_subscriptions = sa.table(
    "subscriptions",
    sa.column("id", sa.String),
    sa.column("secret", sa.Text),
    sa.column("previous_secret", sa.Text),
    sa.column("signing_algorithm", sa.String),
)


def _box() -> Any:
    box = context.config.attributes.get("secret_box")
    if box is None:
        raise RuntimeError(
            "migration 0005_secrets_at_rest needs the secret keys: run it with "
            "`webhook-grpc migrate` (it reads secret_keys), not with bare alembic"
        )
    return box


def upgrade() -> None:
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
    _rewrite(lambda box, value, sid: box.reseal(value, sid), only_plain=True)


def downgrade() -> None:
    conn = op.get_bind()
    ed25519 = conn.execute(
        sa.select(sa.func.count())
        .select_from(_subscriptions)
        .where(_subscriptions.c.signing_algorithm != "hmac_sha256")
    ).scalar_one()
    if ed25519:
        raise RuntimeError(
            f"{ed25519} Ed25519 subscriptions exist; delete them before downgrading below "
            "0005_secrets_at_rest"
        )
    _rewrite(lambda box, value, sid: box.open(value, sid), only_plain=False)
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("public_key")
        batch.drop_column("signing_algorithm")


def _rewrite(change: Any, *, only_plain: bool) -> None:
    conn = op.get_bind()
    t = _subscriptions
    query = sa.select(t.c.id, t.c.secret, t.c.previous_secret)
    if only_plain:
        query = query.where(
            sa.or_(
                t.c.secret.not_like("whenc:%"),
                sa.and_(t.c.previous_secret.is_not(None), t.c.previous_secret.not_like("whenc:%")),
            )
        )
    rows = conn.execute(query).all()
    if not rows:
        return
    box = _box()
    for row in rows:
        conn.execute(
            sa.update(t)
            .where(t.c.id == row.id)
            .values(
                secret=change(box, row.secret, row.id),
                previous_secret=(
                    change(box, row.previous_secret, row.id) if row.previous_secret else None
                ),
            )
        )
