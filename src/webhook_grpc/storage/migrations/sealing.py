"""What the migrations that rewrite sealed subscription secrets share: the encryption keys, which
storage/migrate.py hands over, and the columns they read and write."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from webhook_grpc.encryption import SecretBox

# The columns as every revision from 0005_secrets_at_rest on has them.
subscription_secrets = sa.table(
    "subscriptions",
    sa.column("id", sa.String),
    sa.column("secret", sa.Text),
    sa.column("previous_secret", sa.Text),
    sa.column("signing_algorithm", sa.String),
)


def secret_box(revision: str) -> SecretBox:
    """The configured keys; RuntimeError when the migration was run without them."""
    box = context.config.attributes.get("secret_box")
    if not isinstance(box, SecretBox):
        raise RuntimeError(
            f"migration {revision} needs the secret keys: run it with "
            "`webhook-grpc migrate` (it reads secret_key), not with bare alembic"
        )
    return box
