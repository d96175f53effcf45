"""Subscription rows in and out, as domain records (the same SQL on every engine; the drivers
add the per-tenant write lock)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.models import (
    DisabledReason,
    Ordering,
    PayloadMode,
    SigningAlgorithm,
    Subscription,
    SubscriptionChanges,
    SubscriptionStatus,
)
from webhook_grpc.domain.signing import SigningKeys
from webhook_grpc.domain.subscriptions import DeliveryTarget, Recipient
from webhook_grpc.encryption.box import SEALED_HEAD_LENGTH

from ..ports import SealedSecrets
from ..tables import SubscriptionRow
from ..tables.base import table_of

T = table_of(SubscriptionRow)
ACTIVE = SubscriptionStatus.ACTIVE.value


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
        signing_algorithm=SigningAlgorithm(m["signing_algorithm"]),
        public_key=m["public_key"] or "",
        filter=m["filter"],
        headers=dict(m["headers"]),
        ordering=Ordering(m["ordering"]),
        rate_limit_per_second=m["rate_limit_per_second"],
    )


# The columns a DeliveryTarget is made from.
DELIVERY_TARGET_COLUMNS = (
    T.c.id,
    T.c.tenant_id,
    T.c.url,
    T.c.status,
    T.c.payload_mode,
    T.c.secret,
    T.c.previous_secret,
    T.c.previous_secret_expires_at,
    T.c.headers,
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
    headers: dict[str, str],
) -> DeliveryTarget:
    return DeliveryTarget(
        id=subscription_id,
        tenant_id=tenant_id,
        url=url,
        active=status == ACTIVE,
        payload_mode=PayloadMode(payload_mode),
        keys=SigningKeys(secret, previous_secret, previous_secret_expires_at),
        headers=dict(headers),
    )


async def delivery_targets(
    conn: AsyncConnection, subscription_ids: set[str]
) -> dict[str, DeliveryTarget]:
    if not subscription_ids:
        return {}
    query = select(*DELIVERY_TARGET_COLUMNS).where(T.c.id.in_(sorted(subscription_ids)))
    return {
        row.id: delivery_target(
            row.id,
            row.tenant_id,
            row.url,
            row.status,
            row.payload_mode,
            row.secret,
            row.previous_secret,
            row.previous_secret_expires_at,
            row.headers,
        )
        for row in await conn.execute(query)
    }


async def active_recipients(conn: AsyncConnection, tenant_ids: set[str]) -> list[Recipient]:
    query = select(T.c.id, T.c.tenant_id, T.c.event_patterns, T.c.filter).where(
        T.c.tenant_id.in_(sorted(tenant_ids)), T.c.status == ACTIVE
    )
    return [
        Recipient(row.id, row.tenant_id, tuple(row.event_patterns), row.filter)
        for row in await conn.execute(query)
    ]


def by_tenant(recipients: Iterable[Recipient], tenant_ids: set[str]) -> dict[str, list[Recipient]]:
    """Recipients grouped by tenant, every tenant asked for a key."""
    grouped: dict[str, list[Recipient]] = {tenant_id: [] for tenant_id in tenant_ids}
    for recipient in recipients:
        grouped[recipient.tenant_id].append(recipient)
    return grouped


class CoreSubscriptions(ABC):
    """What a driver adds is abstract here."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @abstractmethod
    async def lock_tenant(self, tenant_id: str) -> None: ...

    async def count_for_tenant(self, tenant_id: str) -> int:
        result = await self._conn.execute(
            select(func.count()).select_from(T).where(T.c.tenant_id == tenant_id)
        )
        return int(result.scalar_one())

    async def insert(self, subscription: Subscription, secret: str) -> None:
        s = subscription
        await self._conn.execute(
            T.insert().values(
                id=s.id,
                tenant_id=s.tenant_id,
                url=s.url,
                event_patterns=list(s.event_patterns),
                description=s.description,
                status=s.status.value,
                disabled_reason=s.disabled_reason.value if s.disabled_reason else None,
                payload_mode=s.payload_mode.value,
                metadata=dict(s.metadata),
                secret=secret,
                filter=s.filter,
                headers=dict(s.headers),
                previous_secret=None,
                previous_secret_expires_at=s.previous_secret_expires_at,
                signing_algorithm=s.signing_algorithm.value,
                public_key=s.public_key or None,
                failure_window_start=s.created_at,
                created_at=s.created_at,
                updated_at=s.updated_at,
                disabled_at=s.disabled_at,
                ordering=s.ordering.value,
                rate_limit_per_second=s.rate_limit_per_second,
            )
        )

    async def get(self, subscription_id: str, tenant_id: str | None) -> Subscription | None:
        query = select(T).where(T.c.id == subscription_id)
        if tenant_id is not None:
            query = query.where(T.c.tenant_id == tenant_id)
        row = (await self._conn.execute(query)).first()
        return to_subscription(row) if row else None

    async def signing_keys(self, subscription_id: str) -> SigningKeys | None:
        row = (
            await self._conn.execute(
                select(T.c.secret, T.c.previous_secret, T.c.previous_secret_expires_at).where(
                    T.c.id == subscription_id
                )
            )
        ).first()
        return (
            SigningKeys(row.secret, row.previous_secret, row.previous_secret_expires_at)
            if row
            else None
        )

    async def list_page(
        self,
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
        return [to_subscription(row) for row in await self._conn.execute(query)]

    async def change(
        self, subscription_id: str, changes: SubscriptionChanges, now: datetime
    ) -> None:
        values: dict[str, Any] = {"updated_at": now}
        if changes.url is not None:
            values["url"] = changes.url
        if changes.event_patterns is not None:
            values["event_patterns"] = list(changes.event_patterns)
        if changes.description is not None:
            values["description"] = changes.description
        if changes.metadata is not None:
            values["metadata"] = dict(changes.metadata)
        if changes.payload_mode is not None:
            values["payload_mode"] = changes.payload_mode.value
        if changes.filter is not None:
            values["filter"] = changes.filter
        if changes.headers is not None:
            values["headers"] = dict(changes.headers)
        if changes.ordering is not None:
            values["ordering"] = changes.ordering.value
        if changes.rate_limit_per_second is not None:
            values["rate_limit_per_second"] = changes.rate_limit_per_second
        await self._update(subscription_id, values)

    async def activate(self, subscription_id: str, now: datetime) -> None:
        await self._update(
            subscription_id,
            {
                "status": ACTIVE,
                "disabled_reason": None,
                "disabled_at": None,
                "failure_window_start": now,
                "updated_at": now,
            },
        )

    async def disable_if_active(
        self, subscription_id: str, reason: DisabledReason, now: datetime
    ) -> bool:
        result = await self._conn.execute(
            update(T)
            .where(T.c.id == subscription_id, T.c.status == ACTIVE)
            .values(
                status=SubscriptionStatus.DISABLED.value,
                disabled_reason=reason.value,
                disabled_at=now,
                updated_at=now,
            )
        )
        return result.rowcount > 0

    async def rotate_keys(
        self,
        subscription_id: str,
        keys: SigningKeys,
        now: datetime,
        public_key: str | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "secret": keys.secret,
            "previous_secret": keys.previous_secret,
            "previous_secret_expires_at": keys.previous_secret_expires_at,
            "updated_at": now,
        }
        if public_key is not None:
            values["public_key"] = public_key
        await self._update(subscription_id, values)

    async def sealed_key_heads(self) -> set[str]:
        heads = set()
        for column in (T.c.secret, T.c.previous_secret):
            head = func.substr(column, 1, SEALED_HEAD_LENGTH)
            query = select(head).where(column.is_not(None)).distinct()
            heads |= set((await self._conn.execute(query)).scalars())
        return heads

    async def sealed_secrets_page(self, after_id: str, limit: int) -> list[SealedSecrets]:
        query = (
            select(T.c.id, T.c.secret, T.c.previous_secret)
            .where(T.c.id > after_id)
            .order_by(T.c.id)
            .limit(limit)
        )
        return [
            SealedSecrets(row.id, row.secret, row.previous_secret)
            for row in await self._conn.execute(query)
        ]

    async def replace_sealed(self, current: SealedSecrets, resealed: SealedSecrets) -> bool:
        result = await self._conn.execute(
            update(T)
            .where(
                T.c.id == current.subscription_id,
                T.c.secret == current.secret,
                T.c.previous_secret.is_not_distinct_from(current.previous_secret),
            )
            .values(secret=resealed.secret, previous_secret=resealed.previous_secret)
        )
        return result.rowcount > 0

    async def delete(self, subscription_id: str) -> None:
        await self._conn.execute(delete(T).where(T.c.id == subscription_id))

    async def failure_window_start(self, subscription_id: str) -> datetime | None:
        query = select(T.c.failure_window_start).where(T.c.id == subscription_id)
        value = (await self._conn.execute(query)).scalar_one_or_none()
        return value if isinstance(value, datetime) else None

    async def _update(self, subscription_id: str, values: dict[str, Any]) -> None:
        await self._conn.execute(update(T).where(T.c.id == subscription_id).values(**values))
