"""Ed25519 subscriptions get a shared secret for X-Webhook-Signature (SPEC §12)

Revision ID: 0006_ed25519_shared_secret
Revises: 0004_fifo_rate_limit
Create Date: 2026-11-30

An Ed25519 subscription's sealed signing key becomes its private key and a shared secret,
``whsk_… whsec_…`` (domain/signing.py); the upgrade generates the secret for each existing one
(its receivers get it with the next RotateSubscriptionSecret; until then they verify ``v1a`` as
before). Opening and sealing needs the keys, as 0005_secrets_at_rest does: storage/migrate.py
hands over the SecretBox, and without Ed25519 rows none is needed. A previous key still in its
grace period stays a lone private key: it never had a shared secret. The downgrade drops the
shared secrets again.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from webhook_grpc.domain.signing import ed25519_signing_key, generate_secret
from webhook_grpc.storage.migrations.sealing import secret_box, subscription_secrets

revision = "0006_ed25519_shared_secret"
down_revision = "0004_fifo_rate_limit"
branch_labels = None
depends_on = None


def _with_shared_secret(signing_key: str) -> str:
    if " " in signing_key:  # already has one
        return signing_key
    return ed25519_signing_key(signing_key, generate_secret())


def _without_shared_secret(signing_key: str) -> str:
    return signing_key.partition(" ")[0]


def upgrade() -> None:
    _rewrite_ed25519(_with_shared_secret)


def downgrade() -> None:
    _rewrite_ed25519(_without_shared_secret, previous_too=True)


def _rewrite_ed25519(change: Callable[[str], str], previous_too: bool = False) -> None:
    """Each Ed25519 row's sealed signing key opened, changed and sealed again."""
    conn = op.get_bind()
    t = subscription_secrets
    query = sa.select(t.c.id, t.c.secret, t.c.previous_secret).where(
        t.c.signing_algorithm == "ed25519"
    )
    rows = list(conn.execute(query).all())
    if not rows:
        return  # nothing to open: no keys needed
    box = secret_box(revision)
    for row in rows:
        values = {"secret": box.seal(change(box.open(row.secret, row.id)), row.id)}
        if previous_too and row.previous_secret:
            previous = change(box.open(row.previous_secret, row.id))
            values["previous_secret"] = box.seal(previous, row.id)
        conn.execute(sa.update(t).where(t.c.id == row.id).values(**values))
