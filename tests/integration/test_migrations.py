"""Alembic migrations create exactly the schema the table models describe, on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from webhook_grpc.storage.migrate import upgrade
from webhook_grpc.storage.tables import Base
from webhook_grpc.storage.urls import sync_url


def test_migrations_match_models_and_are_idempotent(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)  # a second run is a no-op
    engine = sa.create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
