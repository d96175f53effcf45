"""What a dispatcher leases: due deliveries, with the events and subscriptions they need.

On PostgreSQL this is one autocommit statement (one round trip, no BEGIN/COMMIT): the lease
UPDATE as a data-modifying CTE, joined to the events and subscriptions of the leased rows, and
committed without waiting for the WAL flush (see `deliveries.relax_durability` for why that is
safe). On SQLite, the lease and two reads in the caller's write transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from . import deliveries as delivery_store
from . import driver
from . import events as event_store
from . import subscriptions as subscription_store
from .deliveries import LeasedDelivery, LeaseRequest
from .events import StoredEvent
from .subscriptions import DeliveryTarget


@dataclass(frozen=True)
class LeasedWork:
    deliveries: list[LeasedDelivery]
    events: dict[str, StoredEvent]
    """By event id; an event purged since is missing."""
    targets: dict[str, DeliveryTarget]
    """By subscription id; a subscription deleted since is missing."""


async def lease_work(conn: AsyncConnection, request: LeaseRequest) -> LeasedWork:
    """Lease as `deliveries.lease_due` does, and load what attempting the deliveries takes.

    On PostgreSQL `conn` must be in autocommit mode (`Database.autocommit()`)."""
    if conn.dialect.name == "postgresql":
        params = delivery_store.lease_params(request)
        rows = await driver.fetch_all(conn, _LEASE_WORK_POSTGRES, params)
        return _from_rows(rows, request.lease_token)
    leased = await delivery_store.lease_due(conn, request)
    if not leased:
        return LeasedWork([], {}, {})
    events = await event_store.by_ids(conn, [d.event_id for d in leased])
    targets = await subscription_store.delivery_targets(conn, {d.subscription_id for d in leased})
    return LeasedWork(leased, events, targets)


def _from_rows(rows: list[tuple[Any, ...]], lease_token: str) -> LeasedWork:
    work = LeasedWork([], {}, {})
    for row in rows:
        delivery_id, event_id, subscription_id, attempt_count = row[:4]
        work.deliveries.append(
            LeasedDelivery(delivery_id, event_id, subscription_id, attempt_count, lease_token)
        )
        event_columns, target_columns = row[4:14], row[14:]
        if event_columns[0] is not None and event_id not in work.events:
            work.events[event_id] = event_store.from_postgres_row(event_columns)
        if target_columns[0] is not None and subscription_id not in work.targets:
            _, tenant_id, url, status, mode, secret, previous_secret, expires_at = target_columns
            work.targets[subscription_id] = subscription_store.delivery_target(
                subscription_id,
                tenant_id,
                url,
                status,
                mode,
                secret,
                previous_secret,
                expires_at.astimezone(UTC) if expires_at else None,
            )
    return work


# set_config(..., true) holds for this statement's own transaction, which commits when the
# statement ends; with no row leased nothing was written and there is no flush to wait for.
_LEASE_WORK_POSTGRES = f"""
    WITH leased AS ({delivery_store.LEASE_POSTGRES})
    SELECT
        leased.id, leased.event_id, leased.subscription_id, leased.attempt_count,
        e.id, e.tenant_id, e.type, e.entity_id, e.data, e.previous,
        e.occurred_at, e.published_at, e.tx, e.seq,
        s.id, s.tenant_id, s.url, s.status, s.payload_mode,
        s.secret, s.previous_secret, s.previous_secret_expires_at
    FROM leased
    LEFT JOIN events AS e ON e.id = leased.event_id
    LEFT JOIN subscriptions AS s ON s.id = leased.subscription_id
    WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
"""
