"""Alembic environment: runs migrations on the connection handed over by storage/migrate.py."""

from __future__ import annotations

from alembic import context

from webhook_grpc.storage.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
