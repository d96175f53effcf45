"""SQLite's leasing and attempt recording: Core statements in the caller's write transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, bindparam, case, func, literal, select, update

from webhook_grpc.domain.deliveries import AttemptRecord, LeasedDelivery

from ..common.controlled_lease import (
    controlled_ids,
    lease_controlled,
    push_after_too_many_requests,
    with_due_work,
)
from ..common.deliveries import (
    ATTEMPT_COLUMNS,
    LEASE_WINDOW,
    PENDING,
    A,
    CoreDeliveries,
    D,
    attempt_values,
)
from ..common.events import by_ids
from ..common.subscriptions import delivery_targets
from ..ports import LeasedWork, LeaseRequest

# Built once, so that their cache keys are too (see repositories.py).
_INSERT_ATTEMPTS = A.insert()
_LIVE = select(D.c.id).where(D.c.id.in_(bindparam("ids", expanding=True)))
_RECORD = (
    update(D)
    .where(D.c.id == bindparam("b_id"), D.c.lease_token == bindparam("b_token"))
    .values(
        status=bindparam("b_status"),
        attempt_count=bindparam("b_count"),
        next_attempt_at=bindparam("b_next", type_=D.c.next_attempt_at.type),
        lease_token=None,
        updated_at=bindparam("b_now", type_=D.c.updated_at.type),
    )
)


class SqliteDeliveries(CoreDeliveries):
    async def relax_durability(self) -> None:
        """Nothing to relax: the database runs with synchronous=NORMAL throughout."""

    async def lease_work(self, request: LeaseRequest) -> LeasedWork:
        # The lease and two reads, in the caller's write transaction (which holds the write
        # lock, so no other dispatcher can lease the same rows).
        result = await self._conn.execute(
            update(D)
            .where(D.c.id.in_(_candidates(request).scalar_subquery()), D.c.status == PENDING)
            .where(D.c.next_attempt_at <= request.now)
            .values(next_attempt_at=request.lease_until, lease_token=request.lease_token)
            .returning(D.c.id, D.c.event_id, D.c.subscription_id, D.c.attempt_count)
        )
        token = request.lease_token
        leased = [
            LeasedDelivery(row.id, row.event_id, row.subscription_id, row.attempt_count, token)
            for row in result
        ]
        work = LeasedWork([], {}, {})
        if leased:
            events = await by_ids(self._conn, [d.event_id for d in leased])
            targets = await delivery_targets(self._conn, {d.subscription_id for d in leased})
            work = LeasedWork(leased, events, targets)
        room = request.limit - len(leased)
        if room > 0:
            locked = await self._conn.execute(with_due_work(request))
            controlled = await lease_controlled(self._conn, request, [r.id for r in locked], room)
            work = work.merged(controlled)
        return work

    async def record_attempts(self, records: Sequence[AttemptRecord]) -> int:
        if not records:
            return 0
        # Attempts of deliveries purged while in flight are left out (the write transaction
        # holds the database: none can go between this read and the insert).
        wanted = sorted({r.delivery_id for r in records})
        found = await self._conn.execute(_LIVE, {"ids": wanted})
        live = set(found.scalars())
        attempts = [a for a in attempt_values(records) if a["delivery_id"] in live]
        await push_after_too_many_requests(self._conn, records)
        if attempts:
            await self._conn.execute(
                _INSERT_ATTEMPTS, [{k: a[k] for k in ATTEMPT_COLUMNS} for a in attempts]
            )
            await self._conn.execute(
                _RECORD,
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
        return len(records) - len(attempts)


def _candidates(request: LeaseRequest) -> Select[tuple[str]]:
    """The ids of the due rows to lease."""
    room, per_subscription = request.room, request.per_subscription
    due = select(D.c.id, D.c.subscription_id, D.c.next_attempt_at).where(
        D.c.status == PENDING, D.c.next_attempt_at <= request.now
    )
    if request.full:
        due = due.where(D.c.subscription_id.not_in(request.full))
    due = due.where(D.c.subscription_id.not_in(controlled_ids().scalar_subquery()))
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
