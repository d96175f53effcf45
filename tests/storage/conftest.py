"""The storage contract, run against every driver: `storage` is a fresh, migrated database on
SQLite and on PostgreSQL (CI=true fails when PostgreSQL is unreachable)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.ids import new_id
from webhook_grpc.domain.models import DeliveryStatus, PayloadMode, Subscription, SubscriptionStatus
from webhook_grpc.storage import migrate
from webhook_grpc.storage.factory import open_storage
from webhook_grpc.storage.ports import NewDelivery, NewEvent, Storage
from webhook_grpc.storage.sqlite.storage import SqliteStorage

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec_" + "A" * 43
"""What the subscriptions made here are stored with (sealed, for all storage knows)."""


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    async with migrated(database_url) as opened:
        yield opened


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    """The database file of `sqlite_storage`, for tests of the SQLite driver alone."""
    return tmp_path / "webhooks.db"


@pytest.fixture
async def sqlite_storage(sqlite_file: Path) -> AsyncIterator[SqliteStorage]:
    async with migrated(f"sqlite:///{sqlite_file}") as opened:
        assert isinstance(opened, SqliteStorage)
        yield opened


@asynccontextmanager
async def migrated(url: str) -> AsyncIterator[Storage]:
    await asyncio.to_thread(migrate.upgrade, url)
    opened = open_storage(url)
    yield opened
    await opened.dispose()


def new_event(
    tenant_id: str = "acme",
    type: str = "product.created",
    *,
    entity_id: str = "p1",
    published_at: datetime = NOW,
    idempotency_key: str | None = None,
    trace_context: str | None = None,
) -> NewEvent:
    return NewEvent(
        id=new_id("evt"),
        tenant_id=tenant_id,
        type=type,
        entity_id=entity_id,
        data={"id": entity_id},
        previous=None,
        occurred_at=published_at,
        published_at=published_at,
        idempotency_key=idempotency_key,
        trace_context=trace_context,
        rules_version=None,
    )


def new_delivery(event: NewEvent, subscription_id: str, due: datetime = NOW) -> NewDelivery:
    return NewDelivery(
        id=new_id("dlv"),
        tenant_id=event["tenant_id"],
        event_id=event["id"],
        subscription_id=subscription_id,
        event_type=event["type"],
        status=DeliveryStatus.PENDING.value,
        attempt_count=0,
        next_attempt_at=due,
        lease_token=None,
        created_at=event["published_at"],
        updated_at=event["published_at"],
    )


def new_subscription(
    tenant_id: str = "acme",
    patterns: tuple[str, ...] = ("product.*",),
    *,
    created_at: datetime = NOW,
) -> Subscription:
    return Subscription(
        id=new_id("sub"),
        tenant_id=tenant_id,
        url="https://example.test/hook",
        event_patterns=patterns,
        description="",
        status=SubscriptionStatus.ACTIVE,
        disabled_reason=None,
        payload_mode=PayloadMode.FULL,
        metadata={"team": "a"},
        created_at=created_at,
        updated_at=created_at,
        disabled_at=None,
        previous_secret_expires_at=None,
    )


async def add_subscription(
    storage: Storage, tenant_id: str = "acme", patterns: tuple[str, ...] = ("product.*",)
) -> Subscription:
    subscription = new_subscription(tenant_id, patterns)
    async with storage.transaction() as unit:
        await unit.subscriptions.insert(subscription, SECRET)
    return subscription


async def publish(
    storage: Storage, events: Sequence[NewEvent], deliveries: Sequence[NewDelivery] = ()
) -> dict[str, FeedPosition]:
    async with storage.autocommit() as unit:
        return await unit.events.insert_with_deliveries(events, deliveries)


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)
