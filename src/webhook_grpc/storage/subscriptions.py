"""Subscription rows in and out; returns domain records, never ORM rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, tuple_, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.models import (
    DisabledReason,
    PayloadMode,
    Subscription,
    SubscriptionStatus,
)
from webhook_grpc.domain.signing import SigningKeys
from webhook_grpc.domain.subscriptions import DeliveryTarget, Recipient

from .tables import SubscriptionRow
from .tables.base import table_of

T = table_of(SubscriptionRow)


def to_subscription(row: Row[*tuple[Any, ...]]) -> Subscription:
    m = row._mapping
    return Subscription(
        id=m["id"],
        tenant_id=m["tenant_id"],
        url=m["url"],
        event_patterns=tuple(m["event_patterns"]),
        description=m["description"],
        status=SubscriptionStatus(m["status"]),
        disabled_reason=DisabledReason(m["disabled_reason"]) if m["disabled_reason"] else None,
        payload_mode=PayloadMode(m["payload_mode"]),
        metadata=dict(m["metadata"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        disabled_at=m["disabled_at"],
        previous_secret_expires_at=m["previous_secret_expires_at"],
    )


async def lock_tenant(conn: AsyncConnection, tenant_id: str) -> None:
    """Serialise subscription writes of one tenant until the transaction ends.

    SQLite needs nothing: write transactions there already hold the database's write lock."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"subscriptions:{tenant_id}"},
        )


async def count_for_tenant(conn: AsyncConnection, tenant_id: str) -> int:
    result = await conn.execute(
        select(func.count()).select_from(T).where(T.c.tenant_id == tenant_id)
    )
    return int(result.scalar_one())


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(T.insert().values(**values))


async def get(
    conn: AsyncConnection, subscription_id: str, tenant_id: str | None
) -> Subscription | None:
    query = select(T).where(T.c.id == subscription_id)
    if tenant_id is not None:
        query = query.where(T.c.tenant_id == tenant_id)
    row = (await conn.execute(query)).first()
    return to_subscription(row) if row else None


async def get_signing_keys(conn: AsyncConnection, subscription_id: str) -> SigningKeys | None:
    row = (
        await conn.execute(
            select(T.c.secret, T.c.previous_secret, T.c.previous_secret_expires_at).where(
                T.c.id == subscription_id
            )
        )
    ).first()
    return SigningKeys(*row) if row else None


async def list_page(
    conn: AsyncConnection,
    tenant_id: str,
    status: SubscriptionStatus | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Subscription]:
    query = select(T).where(T.c.tenant_id == tenant_id)
    if status is not None:
        query = query.where(T.c.status == status.value)
    if after is not None:
        query = query.where(tuple_(T.c.created_at, T.c.id) > tuple_(*after))
    query = query.order_by(T.c.created_at, T.c.id).limit(limit)
    return [to_subscription(row) for row in await conn.execute(query)]


async def active_recipients(conn: AsyncConnection, tenant_ids: set[str]) -> list[Recipient]:
    query = select(T.c.id, T.c.tenant_id, T.c.event_patterns).where(
        T.c.tenant_id.in_(sorted(tenant_ids)), T.c.status == SubscriptionStatus.ACTIVE.value
    )
    return [
        Recipient(row.id, row.tenant_id, tuple(row.event_patterns))
        for row in await conn.execute(query)
    ]


async def update_values(
    conn: AsyncConnection, subscription_id: str, values: dict[str, Any]
) -> bool:
    result = await conn.execute(update(T).where(T.c.id == subscription_id).values(**values))
    return result.rowcount > 0


async def delete_row(conn: AsyncConnection, subscription_id: str) -> None:
    await conn.execute(delete(T).where(T.c.id == subscription_id))


async def delivery_targets(
    conn: AsyncConnection, subscription_ids: set[str]
) -> dict[str, DeliveryTarget]:
    if not subscription_ids:
        return {}
    query = select(*DELIVERY_TARGET_COLUMNS).where(T.c.id.in_(sorted(subscription_ids)))
    return {row.id: delivery_target(*row) for row in await conn.execute(query)}


# The columns `delivery_target` is made from, in its parameters' order.
DELIVERY_TARGET_COLUMNS = (
    T.c.id,
    T.c.tenant_id,
    T.c.url,
    T.c.status,
    T.c.payload_mode,
    T.c.secret,
    T.c.previous_secret,
    T.c.previous_secret_expires_at,
)


def delivery_target(
    subscription_id: str,
    tenant_id: str,
    url: str,
    status: str,
    payload_mode: str,
    secret: str,
    previous_secret: str | None,
    previous_secret_expires_at: datetime | None,
) -> DeliveryTarget:
    """A DeliveryTarget from the values of DELIVERY_TARGET_COLUMNS."""
    return DeliveryTarget(
        id=subscription_id,
        tenant_id=tenant_id,
        url=url,
        active=status == SubscriptionStatus.ACTIVE.value,
        payload_mode=PayloadMode(payload_mode),
        keys=SigningKeys(secret, previous_secret, previous_secret_expires_at),
    )


async def failure_window_start(conn: AsyncConnection, subscription_id: str) -> datetime | None:
    query = select(T.c.failure_window_start).where(T.c.id == subscription_id)
    value = (await conn.execute(query)).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


async def disable_if_active(
    conn: AsyncConnection, subscription_id: str, reason: DisabledReason, now: datetime
) -> bool:
    """Disable an active subscription; False when it was not active (someone else won)."""
    result = await conn.execute(
        update(T)
        .where(T.c.id == subscription_id, T.c.status == SubscriptionStatus.ACTIVE.value)
        .values(
            status=SubscriptionStatus.DISABLED.value,
            disabled_reason=reason.value,
            disabled_at=now,
            updated_at=now,
        )
    )
    return result.rowcount > 0
