"""Alembic migrations create exactly the schema the table models describe, on both backends."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.support.databases import PostgresDatabase
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


def test_processes_starting_together_on_a_new_database_migrate_it_once(
    postgres_database: PostgresDatabase,
) -> None:
    fresh = PostgresDatabase()
    fresh.create()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for outcome in [pool.submit(upgrade, fresh.url) for _ in range(4)]:
                outcome.result()  # none of them failed on a half-created schema
        engine = sa.create_engine(sync_url(fresh.url))
        try:
            with engine.connect() as conn:
                versions = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                assert len(versions.all()) == 1
        finally:
            engine.dispose()
    finally:
        fresh.drop()
