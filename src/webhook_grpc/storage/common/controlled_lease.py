"""The lease of subscriptions under delivery controls (SPEC §11): FIFO ordering and rate limits.

Their deliveries are leased apart from the others, after the rows of the subscriptions with due
work are locked: no two dispatchers can lease from one controlled subscription at once. Here is
SQLite's lease, statement by statement in the caller's write transaction (its write lock
serialises the whole lease, and every statement sees everything committed before).
PostgreSQL's does the same in one statement (`_LEASE_CONTROLLED` in postgresql/deliveries.py):
FOR UPDATE SKIP LOCKED, so another dispatcher skips a locked subscription instead of waiting.

- FIFO: only the oldest pending delivery in feed order (events' tx, seq), when it is due and no
  other delivery of the subscription is leased (a lease not yet expired). A failing head stays
  pending with its retry time and holds the rest; a crashed dispatcher's lease expires and the
  head is due again, first.
- Rate limit: up to a second's worth of slots from the shared GCRA state (`next_slot_at`,
  domain/rate_limit.py), each delivery leased with its slot as `not_before`; a subscription
  whose next slot lies ahead is not locked at all, so it is skipped, not waited on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Exists,
    Select,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.deliveries import AttemptRecord, LeasedDelivery
from webhook_grpc.domain.models import Ordering
from webhook_grpc.domain.rate_limit import RateLimit, RateState, reserve

from ..ports import LeasedWork, LeaseRequest
from ..tables import DeliveryRow, SubscriptionRow
from ..tables.base import table_of
from ..tables.subscriptions import CONTROLLED as CONTROLLED_PREDICATE
from .events import by_ids
from .subscriptions import delivery_targets

D = table_of(DeliveryRow)
S = table_of(SubscriptionRow)
PENDING = "pending"
FIFO = Ordering.FIFO.value
TOO_MANY_REQUESTS = 429

CONTROLLED = or_(S.c.ordering == FIFO, S.c.rate_limit_per_second > 0)
CONTROLLED_SQL = CONTROLLED_PREDICATE


@dataclass(frozen=True)
class _Locked:
    id: str
    fifo: bool
    limit: RateLimit | None
    next_slot_at: datetime | None
    room: int


def controlled_ids() -> Select[tuple[str]]:
    """The subscriptions the plain lease leaves out (a small partial index)."""
    return select(S.c.id).where(CONTROLLED)


def with_due_work(request: LeaseRequest) -> Select[tuple[str]]:
    """Controlled subscriptions with a due delivery whose rate limit grants a slot now, that
    have room in this process and, if FIFO, no delivery leased; the caller adds the row lock."""
    due = exists().where(
        D.c.subscription_id == S.c.id, D.c.status == PENDING, D.c.next_attempt_at <= request.now
    )
    query = select(S.c.id).where(
        CONTROLLED,
        or_(S.c.next_slot_at.is_(None), S.c.next_slot_at <= request.now),
        due,
        or_(S.c.ordering != FIFO, ~_in_flight(S.c.id, request.now)),
    )
    if request.full:
        query = query.where(S.c.id.not_in(request.full))
    return query.order_by(S.c.id).limit(request.limit)


async def lease_controlled(
    conn: AsyncConnection, request: LeaseRequest, locked_ids: Sequence[str], limit: int
) -> LeasedWork:
    """Lease from the subscriptions in `locked_ids` (their rows locked by this transaction), up
    to `limit` deliveries in all."""
    if not locked_ids or limit <= 0:
        return LeasedWork([], {}, {})
    locked = await _locked(conn, request, locked_ids)
    fifo = [s for s in locked if s.fifo]
    picked: list[tuple[_Locked, list[str]]] = []
    if fifo:
        heads = await _fifo_heads(conn, request.now, [s.id for s in fifo])
        picked += [(s, [heads[s.id]]) for s in fifo if s.id in heads]
    for s in locked:
        if not s.fifo:
            picked.append((s, await _due_ids(conn, request.now, s.id, _quota(s))))
    leased: list[LeasedDelivery] = []
    for s, ids in picked:
        ids = ids[: max(limit - len(leased), 0)]
        if ids:
            leased += await _lease(conn, request, s, ids)
    if not leased:
        return LeasedWork([], {}, {})
    events = await by_ids(conn, [d.event_id for d in leased])
    targets = await delivery_targets(conn, {d.subscription_id for d in leased})
    return LeasedWork(leased, events, targets)


async def push_after_too_many_requests(
    conn: AsyncConnection, records: Sequence[AttemptRecord]
) -> None:
    """An endpoint that answered 429 gets no slot before its retry falls due (Retry-After, or
    the backoff): the shared state moves later, for every dispatcher process."""
    pushes = [
        {"p_id": r.subscription_id, "p_at": r.next_attempt_at}
        for r in records
        if r.status_code == TOO_MANY_REQUESTS and r.next_attempt_at is not None
    ]
    if pushes:
        at = bindparam("p_at", type_=S.c.next_slot_at.type)
        await conn.execute(
            update(S)
            .where(
                S.c.id == bindparam("p_id"),
                S.c.rate_limit_per_second > 0,
                or_(S.c.next_slot_at.is_(None), S.c.next_slot_at < at),
            )
            .values(next_slot_at=at),
            pushes,
        )


async def next_slot_after(conn: AsyncConnection, now: datetime) -> datetime | None:
    """The earliest rate-limit slot after `now`: work skipped for its rate limit is due then."""
    value = (
        await conn.execute(
            select(func.min(S.c.next_slot_at)).where(
                S.c.rate_limit_per_second > 0, S.c.next_slot_at > now
            )
        )
    ).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


async def _locked(
    conn: AsyncConnection, request: LeaseRequest, ids: Sequence[str]
) -> list[_Locked]:
    rows = await conn.execute(
        select(S.c.id, S.c.ordering, S.c.rate_limit_per_second, S.c.next_slot_at)
        .where(S.c.id.in_(list(ids)))
        .order_by(S.c.id)
    )
    return [
        _Locked(
            row.id,
            row.ordering == FIFO,
            RateLimit(row.rate_limit_per_second) if row.rate_limit_per_second > 0 else None,
            row.next_slot_at,
            request.room.get(row.id, request.per_subscription),
        )
        for row in rows
    ]


def _quota(s: _Locked) -> int:
    """How many deliveries one lease may take: the room in this process, and at most a
    second's worth of slots."""
    if s.limit is None:
        return s.room
    return max(min(s.room, int(s.limit.per_second)), 1)


async def _fifo_heads(
    conn: AsyncConnection, now: datetime, subscription_ids: list[str]
) -> dict[str, str]:
    """For each FIFO subscription whose oldest pending delivery (in feed order) is due and none
    of whose deliveries is leased: that delivery's id. The head comes from the index
    (subscription_id, status, event_tx, event_seq), without reading the backlog."""
    queued = D.alias("queued")
    head = (
        select(queued.c.id)
        .where(queued.c.subscription_id == S.c.id, queued.c.status == PENDING)
        .order_by(queued.c.event_tx, queued.c.event_seq)
        .limit(1)
        .scalar_subquery()
    )
    rows = await conn.execute(
        select(S.c.id.label("subscription_id"), D.c.id)
        .select_from(S)
        .join(D, D.c.id == head)
        .where(
            S.c.id.in_(subscription_ids),
            D.c.next_attempt_at <= now,
            ~_in_flight(S.c.id, now),
        )
    )
    return {row.subscription_id: row.id for row in rows}


def _in_flight(subscription_id: ColumnElement[str], now: datetime) -> Exists:
    """Whether a delivery of the subscription is leased (a lease that has not expired): from
    the partial index ix_deliveries_leased."""
    leased = D.alias("leased")
    return exists().where(
        leased.c.subscription_id == subscription_id,
        leased.c.lease_token.is_not(None),
        leased.c.status == PENDING,
        leased.c.next_attempt_at > now,
    )


async def _due_ids(
    conn: AsyncConnection, now: datetime, subscription_id: str, count: int
) -> list[str]:
    if count <= 0:
        return []
    rows = await conn.execute(
        select(D.c.id)
        .where(
            D.c.subscription_id == subscription_id,
            D.c.status == PENDING,
            D.c.next_attempt_at <= now,
        )
        .order_by(D.c.next_attempt_at, D.c.id)
        .limit(count)
    )
    return [row.id for row in rows]


async def _lease(
    conn: AsyncConnection, request: LeaseRequest, s: _Locked, ids: list[str]
) -> list[LeasedDelivery]:
    """Lease `ids` of one locked subscription; with a rate limit, each on its own slot, the
    lease lasting that much longer, and the shared state moved past the last slot."""
    starts: tuple[datetime | None, ...] = (None,) * len(ids)
    if s.limit is not None:
        reservation = reserve(s.limit, RateState(s.next_slot_at), request.now, len(ids))
        starts = reservation.starts
    until = {
        i: literal(request.lease_until + _wait(request.now, start), D.c.next_attempt_at.type)
        for i, start in zip(ids, starts, strict=True)
    }
    result = await conn.execute(
        update(D)
        .where(D.c.id.in_(ids), D.c.status == PENDING, D.c.next_attempt_at <= request.now)
        .values(
            next_attempt_at=case(until, value=D.c.id, else_=D.c.next_attempt_at),
            lease_token=request.lease_token,
        )
        .returning(D.c.id, D.c.event_id, D.c.attempt_count)
    )
    rows = {row.id: row for row in result}
    leased = [
        LeasedDelivery(
            i,
            rows[i].event_id,
            s.id,
            rows[i].attempt_count,
            request.lease_token,
            not_before=start,
            interval=s.limit.interval if s.limit is not None else timedelta(0),
            ordered=s.fifo,
        )
        for i, start in zip(ids, starts, strict=True)
        if i in rows
    ]
    if s.limit is not None and leased:
        after = reserve(s.limit, RateState(s.next_slot_at), request.now, len(leased)).state
        await conn.execute(update(S).where(S.c.id == s.id).values(next_slot_at=after.next_slot_at))
    return leased


def _wait(now: datetime, start: datetime | None) -> timedelta:
    return max(start - now, timedelta(0)) if start is not None else timedelta(0)
