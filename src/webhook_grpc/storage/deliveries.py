"""Delivery rows (the dispatcher's queue) and their attempts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.deliveries import AttemptRecord
from webhook_grpc.domain.models import Attempt, AttemptError, Delivery, DeliveryStatus

from . import driver
from .tables import AttemptRow, DeliveryRow
from .tables.base import table_of

D = table_of(DeliveryRow)
A = table_of(AttemptRow)
PENDING = DeliveryStatus.PENDING.value


async def relax_durability(conn: AsyncConnection) -> None:
    """Let this transaction commit without waiting for the WAL flush (PostgreSQL).

    Only for the dispatcher's bookkeeping (leases, attempt records): if the database crashes
    right after, the lost rows mean a lease that is taken again or an attempt that is made
    again, which at-least-once delivery allows. Publishing never uses this."""
    if conn.dialect.name == "postgresql":
        await driver.fetch_all(conn, _RELAX_POSTGRES, {})


_RELAX_POSTGRES = "SELECT set_config('synchronous_commit', 'off', true)"


async def insert_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert delivery rows as they are (SQLite; on PostgreSQL publishing inserts them with
    their events in one statement, see `events.insert_with_deliveries`)."""
    if rows:
        await conn.execute(D.insert(), rows)


async def next_due_after(conn: AsyncConnection, now: datetime) -> datetime | None:
    """When the next pending delivery falls due after `now`: a scheduled retry, or a lease
    that expires (a leased row is due again at its lease's end)."""
    value = (
        await conn.execute(
            select(func.min(D.c.next_attempt_at)).where(
                D.c.status == PENDING, D.c.next_attempt_at > now
            )
        )
    ).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


async def release(
    conn: AsyncConnection, lease_token: str, ids: Sequence[str], now: datetime
) -> None:
    """Give leased, unattempted deliveries back so any dispatcher can take them at once."""
    if ids:
        await conn.execute(
            update(D)
            .where(D.c.id.in_(list(ids)), D.c.lease_token == lease_token, D.c.status == PENDING)
            .values(next_attempt_at=now, lease_token=None)
        )


async def cancel(conn: AsyncConnection, ids: Sequence[str], now: datetime) -> None:
    if ids:
        await conn.execute(
            update(D)
            .where(D.c.id.in_(list(ids)), D.c.status == PENDING)
            .values(
                status=DeliveryStatus.CANCELLED.value,
                next_attempt_at=None,
                lease_token=None,
                updated_at=now,
            )
        )


async def cancel_pending(conn: AsyncConnection, subscription_id: str, now: datetime) -> int:
    result = await conn.execute(
        update(D)
        .where(D.c.subscription_id == subscription_id, D.c.status == PENDING)
        .values(
            status=DeliveryStatus.CANCELLED.value,
            next_attempt_at=None,
            lease_token=None,
            updated_at=now,
        )
    )
    return result.rowcount


async def record_attempts(conn: AsyncConnection, records: Sequence[AttemptRecord]) -> None:
    """Store attempts and move their deliveries on, for the whole batch at once.

    A delivery whose lease was lost (this attempt outlived it and another dispatcher took the
    row) keeps the newer lease's state; the attempt itself is still recorded."""
    if not records:
        return
    attempts = _attempt_values(records)
    if conn.dialect.name == "postgresql":
        await driver.fetch_all(conn, _RECORD_POSTGRES, {"batch": driver.json_document(attempts)})
        return
    await conn.execute(A.insert(), [{k: a[k] for k in _ATTEMPT_COLUMNS} for a in attempts])
    await conn.execute(
        update(D)
        .where(D.c.id == bindparam("b_id"), D.c.lease_token == bindparam("b_token"))
        .values(
            status=bindparam("b_status"),
            attempt_count=bindparam("b_count"),
            next_attempt_at=bindparam("b_next", type_=D.c.next_attempt_at.type),
            lease_token=None,
            updated_at=bindparam("b_now", type_=D.c.updated_at.type),
        ),
        [
            {
                "b_id": a["delivery_id"],
                "b_token": a["lease_token"],
                "b_status": a["next_status"],
                "b_count": a["attempt_number"],
                "b_next": a["next_attempt_at"],
                "b_now": a["attempted_at"],
            }
            for a in attempts
        ],
    )


def _attempt_values(records: Sequence[AttemptRecord]) -> list[dict[str, Any]]:
    return [
        {
            "delivery_id": r.delivery_id,
            "subscription_id": r.subscription_id,
            "attempt_number": r.attempt_number,
            "attempted_at": r.attempted_at,
            "succeeded": r.succeeded,
            "status_code": r.status_code,
            "latency_ms": r.latency.total_seconds() * 1000,
            "error": r.error.value if r.error else None,
            "error_message": r.error_message,
            "response_body": r.response_body,
            "next_status": r.next_status.value,
            "next_attempt_at": r.next_attempt_at,
            "lease_token": r.lease_token,
        }
        for r in records
    ]


_ATTEMPT_COLUMNS = (
    "delivery_id",
    "subscription_id",
    "attempt_number",
    "attempted_at",
    "succeeded",
    "status_code",
    "latency_ms",
    "error",
    "error_message",
    "response_body",
)
# PostgreSQL: one prepared statement for the whole batch, which travels as one JSON document
# (one json.dumps costs far less than adapting an array per column). The count is only there
# because the fast path fetches a result.
_RECORD_POSTGRES = """
    WITH batch AS (
        SELECT * FROM json_to_recordset(CAST(%(batch)s AS json))
            AS b(delivery_id text, subscription_id text, attempt_number int,
                 attempted_at timestamptz, succeeded boolean, status_code int,
                 latency_ms float8, error text, error_message text, response_body text,
                 next_status text, next_attempt_at timestamptz, lease_token text)
    ), recorded AS (
        INSERT INTO attempts (delivery_id, subscription_id, attempt_number, attempted_at,
                              succeeded, status_code, latency_ms, error, error_message,
                              response_body)
        SELECT delivery_id, subscription_id, attempt_number, attempted_at, succeeded,
               status_code, latency_ms, error, error_message, response_body
        FROM batch
    ), moved AS (
        UPDATE deliveries AS d
        SET status = b.next_status, attempt_count = b.attempt_number,
            next_attempt_at = b.next_attempt_at, lease_token = NULL, updated_at = b.attempted_at
        FROM batch AS b
        WHERE d.id = b.delivery_id AND d.lease_token = b.lease_token
        RETURNING 1
    )
    SELECT count(*) FROM moved
"""


async def failure_figures(
    conn: AsyncConnection, subscription_id: str, since: datetime
) -> tuple[int, int]:
    """(attempts, failed attempts) of a subscription since a time."""
    query = select(
        func.count(), func.coalesce(func.sum(case((A.c.succeeded, 0), else_=1)), 0)
    ).where(A.c.subscription_id == subscription_id, A.c.attempted_at >= since)
    total, failed = (await conn.execute(query)).one()
    return int(total), int(failed)


def to_attempt(a: Row[*tuple[Any, ...]]) -> Attempt:
    return Attempt(
        attempt_number=a.attempt_number,
        attempted_at=a.attempted_at,
        status_code=a.status_code,
        latency=timedelta(milliseconds=a.latency_ms),
        error=AttemptError(a.error) if a.error else None,
        error_message=a.error_message,
        response_body=a.response_body,
    )


def to_delivery(row: Row[*tuple[Any, ...]], attempts: Sequence[Attempt] = ()) -> Delivery:
    m = row._mapping
    return Delivery(
        id=m["id"],
        tenant_id=m["tenant_id"],
        event_id=m["event_id"],
        subscription_id=m["subscription_id"],
        event_type=m["event_type"],
        status=DeliveryStatus(m["status"]),
        attempt_count=m["attempt_count"],
        next_attempt_at=m["next_attempt_at"] if m["status"] == PENDING else None,
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        attempts=tuple(attempts),
    )


async def get(conn: AsyncConnection, delivery_id: str, tenant_id: str | None) -> Delivery | None:
    query = select(D).where(D.c.id == delivery_id)
    if tenant_id is not None:
        query = query.where(D.c.tenant_id == tenant_id)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    attempts = await conn.execute(
        # In the order made: attempt numbers start again at 1 when a schedule is restarted.
        select(A).where(A.c.delivery_id == delivery_id).order_by(A.c.id)
    )
    return to_delivery(
        row,
        [to_attempt(a) for a in attempts],
    )


async def list_page(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    subscription_id: str = "",
    status: DeliveryStatus | None = None,
    event_id: str = "",
    before: tuple[datetime, str] | None = None,
    limit: int,
) -> list[Delivery]:
    query = select(D).where(D.c.tenant_id == tenant_id)
    if subscription_id:
        query = query.where(D.c.subscription_id == subscription_id)
    if status is not None:
        query = query.where(D.c.status == status.value)
    if event_id:
        query = query.where(D.c.event_id == event_id)
    if before is not None:
        query = query.where(tuple_(D.c.created_at, D.c.id) < tuple_(*before))
    query = query.order_by(D.c.created_at.desc(), D.c.id.desc()).limit(limit)
    return [to_delivery(row) for row in await conn.execute(query)]


async def reschedule(
    conn: AsyncConnection,
    now: datetime,
    *,
    delivery_id: str | None = None,
    subscription_id: str | None = None,
    from_status: Collection[DeliveryStatus],
    created_since: datetime | None = None,
) -> int:
    """Make finished deliveries pending again, due now, with the retry schedule restarted
    (RetryDelivery, RecoverFailedDeliveries).

    `attempt_count` counts the attempts of the current schedule (the dispatcher numbers the
    next attempt and picks its backoff step from it), so it starts again at 0; the earlier
    attempts stay in the history."""
    conditions: list[ColumnElement[bool]] = [D.c.status.in_([s.value for s in from_status])]
    if delivery_id is not None:
        conditions.append(D.c.id == delivery_id)
    if subscription_id is not None:
        conditions.append(D.c.subscription_id == subscription_id)
    if created_since is not None:
        conditions.append(D.c.created_at >= created_since)
    result = await conn.execute(
        update(D)
        .where(and_(*conditions))
        .values(
            status=PENDING, attempt_count=0, next_attempt_at=now, lease_token=None, updated_at=now
        )
    )
    return result.rowcount


async def pending_summary(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many deliveries are pending, and the earliest due time among them."""
    count, oldest = (
        await conn.execute(
            select(func.count(), func.min(D.c.next_attempt_at)).where(D.c.status == PENDING)
        )
    ).one()
    return int(count), oldest if isinstance(oldest, datetime) else None
