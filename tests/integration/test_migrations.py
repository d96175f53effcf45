"""Alembic migrations create exactly the schema the table models describe, on both backends."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.support.databases import PostgresDatabase
from webhook_grpc.domain.signing import (
    ed25519_public_key,
    generate_ed25519_private_key,
    generate_secret,
    validate_secret,
)
from webhook_grpc.encryption import SecretBox, generate_key, parse_key
from webhook_grpc.storage.migrate import downgrade, upgrade
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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema at all) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    request.getfixturevalue("postgres_database")  # skips or fails like the other tests
    fresh = PostgresDatabase()
    fresh.create()
    try:
        yield fresh.url
    finally:
        fresh.drop()


def _insert_subscription(database_url: str, secret: str, previous: str, **columns: str) -> None:
    """Row 'sub_old' as an older schema holds it; `columns`: values of columns it adds."""
    engine = sa.create_engine(sync_url(database_url))
    now = datetime(2026, 11, 1, tzinfo=UTC)
    names = "".join(f", {name}" for name in columns)
    values = "".join(f", :{name}" for name in columns)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO subscriptions (id, tenant_id, url, event_patterns, description,"
                    " status, payload_mode, metadata, secret, previous_secret,"
                    f" failure_window_start, created_at, updated_at{names}) VALUES ('sub_old',"
                    " 'acme', 'https://example.test/', '[\"*\"]', '', 'active', 'full', '{}',"
                    f" :secret, :previous, :now, :now, :now{values})"
                ),
                {
                    "secret": secret,
                    "previous": previous,
                    "now": now.replace(tzinfo=None),
                    **columns,
                },
            )
    finally:
        engine.dispose()


def _stored(database_url: str) -> tuple[str, str]:
    engine = sa.create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT secret, previous_secret FROM subscriptions WHERE id = 'sub_old'")
            ).one()
    finally:
        engine.dispose()
    return row.secret, row.previous_secret


VERSIONS = "webhook_grpc.storage.migrations.versions"


def test_0005_seals_plain_text_secrets_and_the_downgrade_opens_them(
    fresh_database_url: str,
) -> None:
    url = fresh_database_url
    secret, previous = generate_secret(), generate_secret()
    upgrade(url, "0001")
    _insert_subscription(url, secret, previous)
    before = importlib.import_module(f"{VERSIONS}.0005_secrets_at_rest").down_revision
    upgrade(url, before)
    with pytest.raises(RuntimeError, match="needs the secret keys"):
        upgrade(url)  # the plain rows cannot be sealed without a key (checked before any DDL)
    box = SecretBox([parse_key(generate_key())])
    upgrade(url, "head", box)
    sealed, sealed_previous = _stored(url)
    assert sealed.startswith("whenc:v1:") and sealed_previous.startswith("whenc:v1:")
    assert box.open(sealed, "sub_old") == secret
    assert box.open(sealed_previous, "sub_old") == previous
    downgrade(url, "0001", box)
    assert _stored(url) == (secret, previous)


def test_0006_gives_existing_ed25519_subscriptions_a_sealed_shared_secret(
    fresh_database_url: str,
) -> None:
    url = fresh_database_url
    box = SecretBox([parse_key(generate_key())])
    before = importlib.import_module(f"{VERSIONS}.0006_ed25519_shared_secret").down_revision
    upgrade(url, before, box)
    # Mid-rotation, as a subscription created and rotated before 0006 is stored.
    private_key, previous_key = generate_ed25519_private_key(), generate_ed25519_private_key()
    sealed_previous = box.seal(previous_key, "sub_old")
    _insert_subscription(
        url,
        box.seal(private_key, "sub_old"),
        sealed_previous,
        signing_algorithm="ed25519",
        public_key=ed25519_public_key(private_key),
    )
    with pytest.raises(RuntimeError, match="needs the secret keys"):
        upgrade(url)  # the row cannot be opened and sealed again without a key
    upgrade(url, "head", box)
    sealed, still_previous = _stored(url)
    assert sealed.startswith("whenc:v1:")
    kept_key, secret = box.open(sealed, "sub_old").split(" ")
    assert kept_key == private_key  # same key pair: receivers' public key still verifies
    validate_secret(secret)
    assert still_previous == sealed_previous  # no shared secret before: it stays v1a only
    upgrade(url, "head", box)  # idempotent
    assert box.open(_stored(url)[0], "sub_old") == f"{private_key} {secret}"
    downgrade(url, before, box)
    assert box.open(_stored(url)[0], "sub_old") == private_key
