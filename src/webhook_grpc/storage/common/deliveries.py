"""Delivery rows (the dispatcher's queue) and their attempts: the statements every engine shares.

The drivers add what differs: leasing, recording attempts, durability."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select, tuple_, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.deliveries import AttemptRecord
from webhook_grpc.domain.models import Attempt, AttemptError, Delivery, DeliveryStatus

from ..ports import LeasedWork, LeaseRequest, NewDelivery
from ..tables import AttemptRow, DeliveryRow, EventRow, SubscriptionRow
from ..tables.base import table_of
from .controlled_lease import next_slot_after

D = table_of(DeliveryRow)
A = table_of(AttemptRow)
E = table_of(EventRow)
S = table_of(SubscriptionRow)
PENDING = DeliveryStatus.PENDING.value
# Due rows a lease looks at, in multiples of the lease size: enough to find work for several
# subscriptions when the oldest rows all belong to one.
LEASE_WINDOW = 4


def attempt_values(records: Sequence[AttemptRecord]) -> list[dict[str, Any]]:
    """Each attempt with the state it moves its delivery to, by column name."""
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


ATTEMPT_COLUMNS = (
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


class CoreDeliveries(ABC):
    """What a driver adds is abstract here."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @abstractmethod
    async def relax_durability(self) -> None: ...

    @abstractmethod
    async def lease_work(self, request: LeaseRequest) -> LeasedWork: ...

    @abstractmethod
    async def record_attempts(self, records: Sequence[AttemptRecord]) -> int: ...

    async def next_due_after(self, now: datetime) -> datetime | None:
        value = (
            await self._conn.execute(
                select(func.min(D.c.next_attempt_at)).where(
                    D.c.status == PENDING, D.c.next_attempt_at > now
                )
            )
        ).scalar_one_or_none()
        due = value if isinstance(value, datetime) else None
        slot = await next_slot_after(self._conn, now)
        return min(due, slot) if due is not None and slot is not None else due or slot

    async def release(self, lease_token: str, ids: Sequence[str], now: datetime) -> None:
        if ids:
            await self._conn.execute(
                update(D)
                .where(D.c.id.in_(list(ids)), D.c.lease_token == lease_token, D.c.status == PENDING)
                .values(next_attempt_at=now, lease_token=None)
            )

    async def cancel(self, ids: Sequence[str], now: datetime) -> None:
        if ids:
            await self._conn.execute(
                update(D)
                .where(D.c.id.in_(list(ids)), D.c.status == PENDING)
                .values(
                    status=DeliveryStatus.CANCELLED.value,
                    next_attempt_at=None,
                    lease_token=None,
                    updated_at=now,
                )
            )

    async def cancel_pending(self, subscription_id: str, now: datetime) -> int:
        result = await self._conn.execute(
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

    async def failure_figures(self, subscription_id: str, since: datetime) -> tuple[int, int]:
        query = select(
            func.count(), func.coalesce(func.sum(case((A.c.succeeded, 0), else_=1)), 0)
        ).where(A.c.subscription_id == subscription_id, A.c.attempted_at >= since)
        total, failed = (await self._conn.execute(query)).one()
        return int(total), int(failed)

    async def window_figures(
        self, subscription_ids: Collection[str], since: datetime
    ) -> dict[str, tuple[int, int]]:
        query = (
            select(
                A.c.subscription_id,
                func.count(),
                func.coalesce(func.sum(case((A.c.succeeded, 0), else_=1)), 0),
            )
            .join(S, S.c.id == A.c.subscription_id)
            .where(
                A.c.subscription_id.in_(list(subscription_ids)),
                A.c.attempted_at >= since,
                A.c.attempted_at >= S.c.failure_window_start,
            )
            .group_by(A.c.subscription_id)
        )
        return {row[0]: (int(row[1]), int(row[2])) for row in await self._conn.execute(query)}

    async def last_attempts(self, subscription_ids: Collection[str]) -> dict[str, Attempt]:
        found: dict[str, Attempt] = {}
        for subscription_id in subscription_ids:  # one index lookup each
            row = (
                await self._conn.execute(
                    select(A)
                    .where(A.c.subscription_id == subscription_id)
                    .order_by(A.c.attempted_at.desc(), A.c.id.desc())
                    .limit(1)
                )
            ).first()
            if row is not None:
                found[subscription_id] = to_attempt(row)
        return found

    async def get(self, delivery_id: str, tenant_id: str | None) -> Delivery | None:
        query = select(D).where(D.c.id == delivery_id)
        if tenant_id is not None:
            query = query.where(D.c.tenant_id == tenant_id)
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        attempts = await self._conn.execute(
            # In the order made: attempt numbers start again at 1 when a schedule is restarted.
            select(A).where(A.c.delivery_id == delivery_id).order_by(A.c.id)
        )
        return to_delivery(row, [to_attempt(a) for a in attempts])

    async def list_page(
        self,
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
        return [to_delivery(row) for row in await self._conn.execute(query)]

    async def reschedule(
        self,
        now: datetime,
        *,
        delivery_id: str | None = None,
        subscription_id: str | None = None,
        from_status: Collection[DeliveryStatus],
        created_since: datetime | None = None,
    ) -> int:
        # `attempt_count` counts the attempts of the current schedule (the dispatcher numbers
        # the next attempt and picks its backoff step from it), so it starts again at 0.
        conditions: list[ColumnElement[bool]] = [D.c.status.in_([s.value for s in from_status])]
        if delivery_id is not None:
            conditions.append(D.c.id == delivery_id)
        if subscription_id is not None:
            conditions.append(D.c.subscription_id == subscription_id)
        if created_since is not None:
            conditions.append(D.c.created_at >= created_since)
        result = await self._conn.execute(
            update(D)
            .where(and_(*conditions))
            .values(
                status=PENDING,
                attempt_count=0,
                next_attempt_at=now,
                lease_token=None,
                updated_at=now,
            )
        )
        return result.rowcount

    async def insert(self, deliveries: Sequence[NewDelivery]) -> None:
        """Deliveries of stored events (a replay), each given its event's feed position."""
        if deliveries:
            await self._conn.execute(D.insert(), [dict(d) for d in deliveries])
            of_event = E.c.id == D.c.event_id
            await self._conn.execute(
                update(D)
                .where(D.c.id.in_([d["id"] for d in deliveries]))
                .values(
                    event_tx=select(E.c.tx).where(of_event).scalar_subquery(),
                    event_seq=select(E.c.seq).where(of_event).scalar_subquery(),
                )
            )

    async def pending_summary(self) -> tuple[int, datetime | None]:
        count, oldest = (
            await self._conn.execute(
                select(func.count(), func.min(D.c.next_attempt_at)).where(D.c.status == PENDING)
            )
        ).one()
        return int(count), oldest if isinstance(oldest, datetime) else None
