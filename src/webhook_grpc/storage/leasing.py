"""Leasing for the dispatcher: due deliveries, with the events and subscriptions attempting
them takes.

On PostgreSQL this is one autocommit statement (one round trip, no BEGIN/COMMIT): the lease
UPDATE as a data-modifying CTE, joined to the events and subscriptions of the leased rows, and
committed without waiting for the WAL flush (see `deliveries.relax_durability` for why that is
safe). On SQLite, the lease and two reads in the caller's write transaction.

The lease moves next_attempt_at to `lease_until`: if the process dies, the rows fall due again
by themselves. PostgreSQL skips rows other dispatchers are leasing right now."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, case, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.deliveries import LeasedDelivery
from webhook_grpc.domain.models import StoredEvent
from webhook_grpc.domain.subscriptions import DeliveryTarget

from . import driver
from . import events as event_store
from . import subscriptions as subscription_store
from .deliveries import PENDING, D
from .events import EVENT_COLUMNS
from .subscriptions import DELIVERY_TARGET_COLUMNS


@dataclass(frozen=True)
class LeaseRequest:
    """Up to `limit` due deliveries, at most `per_subscription` of each subscription or
    `room[subscription_id]` of one named in `room` (none where that is 0 or less), leased
    under `lease_token` until `lease_until`."""

    now: datetime
    lease_until: datetime
    lease_token: str
    limit: int
    per_subscription: int
    room: Mapping[str, int] = field(default_factory=dict)

    @property
    def full(self) -> list[str]:
        """The subscriptions that get nothing (no room left), sorted."""
        return sorted(s for s, n in self.room.items() if n <= 0)


@dataclass(frozen=True)
class LeasedWork:
    deliveries: list[LeasedDelivery]
    events: dict[str, StoredEvent]
    """By event id; an event purged since is missing."""
    targets: dict[str, DeliveryTarget]
    """By subscription id; a subscription deleted since is missing."""


async def lease_work(conn: AsyncConnection, request: LeaseRequest) -> LeasedWork:
    """Lease what `request` asks for, and load what attempting the deliveries takes.

    On PostgreSQL `conn` must be in autocommit mode (`Database.autocommit()`)."""
    if conn.dialect.name == "postgresql":
        rows = await driver.fetch_all(conn, _LEASE_WORK_POSTGRES, _postgres_params(request))
        return _from_rows(rows, request.lease_token)
    leased = await _lease_sqlite(conn, request)
    if not leased:
        return LeasedWork([], {}, {})
    events = await event_store.by_ids(conn, [d.event_id for d in leased])
    targets = await subscription_store.delivery_targets(conn, {d.subscription_id for d in leased})
    return LeasedWork(leased, events, targets)


async def _lease_sqlite(conn: AsyncConnection, request: LeaseRequest) -> list[LeasedDelivery]:
    picked = _candidates_sqlite(request)
    result = await conn.execute(
        update(D)
        .where(D.c.id.in_(picked.scalar_subquery()), D.c.status == PENDING)
        .where(D.c.next_attempt_at <= request.now)
        .values(next_attempt_at=request.lease_until, lease_token=request.lease_token)
        .returning(D.c.id, D.c.event_id, D.c.subscription_id, D.c.attempt_count)
    )
    token = request.lease_token
    return [
        LeasedDelivery(row.id, row.event_id, row.subscription_id, row.attempt_count, token)
        for row in result
    ]


def _candidates_sqlite(request: LeaseRequest) -> Select[tuple[str]]:
    """The ids of the due rows to lease."""
    room, per_subscription = request.room, request.per_subscription
    due = select(D.c.id, D.c.subscription_id, D.c.next_attempt_at).where(
        D.c.status == PENDING, D.c.next_attempt_at <= request.now
    )
    if request.full:
        due = due.where(D.c.subscription_id.not_in(request.full))
    window = (
        due.order_by(D.c.next_attempt_at).limit(request.limit * LEASE_WINDOW).subquery("window")
    )
    ranked = select(
        window.c.id,
        window.c.subscription_id,
        func.row_number()
        .over(partition_by=window.c.subscription_id, order_by=window.c.next_attempt_at)
        .label("rank"),
    ).subquery("ranked")
    allowed = (
        case(dict(room), value=ranked.c.subscription_id, else_=per_subscription)
        if room
        else literal(per_subscription)
    )
    candidates = select(ranked.c.id).where(ranked.c.rank <= allowed)
    return (
        select(D.c.id)
        .where(D.c.id.in_(candidates.scalar_subquery()))
        .order_by(D.c.next_attempt_at)
        .limit(request.limit)
    )


def _postgres_params(request: LeaseRequest) -> dict[str, Any]:
    room = request.room
    return {
        "now": request.now,
        "lease_until": request.lease_until,
        "lease_token": request.lease_token,
        "window": request.limit * LEASE_WINDOW,
        "per_subscription": request.per_subscription,
        "limit": request.limit,
        "full": request.full,
        "room_ids": list(room),
        "room": list(room.values()),
    }


def _from_rows(rows: list[tuple[Any, ...]], lease_token: str) -> LeasedWork:
    work = LeasedWork([], {}, {})
    targets_from = 4 + len(EVENT_COLUMNS)
    for row in rows:
        delivery_id, event_id, subscription_id, attempt_count = row[:4]
        work.deliveries.append(
            LeasedDelivery(delivery_id, event_id, subscription_id, attempt_count, lease_token)
        )
        event_values, target_values = row[4:targets_from], row[targets_from:]
        if event_values[0] is not None and event_id not in work.events:
            work.events[event_id] = event_store.from_postgres_row(event_values)
        if target_values[0] is not None and subscription_id not in work.targets:
            _, tenant_id, url, status, mode, secret, previous_secret, expires_at = target_values
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


# Due rows looked at per lease, in multiples of the lease size: enough to find work for
# several subscriptions when the oldest rows all belong to one.
LEASE_WINDOW = 4
# The PostgreSQL lease, the first part of _LEASE_WORK_POSTGRES (parameters: `_postgres_params`).
# `id = ANY(ARRAY(subquery))` makes PostgreSQL run the small subquery first and then look rows
# up by primary key; `id IN (subquery)` let it hash-join against every due row.
_LEASE_POSTGRES = """
    UPDATE deliveries
    SET next_attempt_at = %(lease_until)s, lease_token = %(lease_token)s
    WHERE id = ANY(ARRAY(
        SELECT d.id FROM deliveries AS d
        WHERE d.id = ANY(ARRAY(
            SELECT ranked.id FROM (
                SELECT due.id, due.subscription_id, row_number() OVER (
                    PARTITION BY due.subscription_id ORDER BY due.next_attempt_at
                ) AS rank
                FROM (
                    SELECT id, subscription_id, next_attempt_at FROM deliveries
                    WHERE status = 'pending' AND next_attempt_at <= %(now)s
                      AND subscription_id <> ALL(CAST(%(full)s AS text[]))
                    ORDER BY next_attempt_at
                    LIMIT CAST(%(window)s AS int)
                ) AS due
            ) AS ranked
            WHERE ranked.rank <= COALESCE(
                (SELECT r.room
                 FROM unnest(CAST(%(room_ids)s AS text[]), CAST(%(room)s AS int[]))
                      AS r(subscription_id, room)
                 WHERE r.subscription_id = ranked.subscription_id),
                CAST(%(per_subscription)s AS int))
        ))
        AND d.status = 'pending' AND d.next_attempt_at <= %(now)s
        ORDER BY d.next_attempt_at
        LIMIT CAST(%(limit)s AS int)
        FOR UPDATE SKIP LOCKED
    ))
    AND status = 'pending' AND next_attempt_at <= %(now)s
    RETURNING id, event_id, subscription_id, attempt_count
"""


_EVENT_VALUES = ", ".join(f"e.{column.name}" for column in EVENT_COLUMNS)
_TARGET_VALUES = ", ".join(f"s.{column.name}" for column in DELIVERY_TARGET_COLUMNS)
# set_config(..., true) holds for this statement's own transaction, which commits when the
# statement ends; with no row leased nothing was written and there is no flush to wait for.
_LEASE_WORK_POSTGRES = f"""
    WITH leased AS ({_LEASE_POSTGRES})
    SELECT leased.id, leased.event_id, leased.subscription_id, leased.attempt_count,
           {_EVENT_VALUES}, {_TARGET_VALUES}
    FROM leased
    LEFT JOIN events AS e ON e.id = leased.event_id
    LEFT JOIN subscriptions AS s ON s.id = leased.subscription_id
    WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
"""
