"""PostgreSQL's leasing and attempt recording, each one prepared statement.

Leasing is one autocommit statement (one round trip, no BEGIN/COMMIT): the lease UPDATE as a
data-modifying CTE that skips rows other dispatchers are leasing right now, joined to the
events and subscriptions of the leased rows, and committed without waiting for the WAL flush
(see `relax_durability` in the port for why that is safe)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.deliveries import AttemptRecord, LeasedDelivery
from webhook_grpc.domain.models import Event, StoredEvent
from webhook_grpc.domain.subscriptions import DeliveryTarget

from ..common.controlled_lease import (
    CONTROLLED_SQL,
    SUBSCRIPTIONS,
    lease_controlled,
    push_after_too_many_requests,
    with_due_work,
)
from ..common.deliveries import LEASE_WINDOW, CoreDeliveries, attempt_values
from ..common.events import EVENT_COLUMNS
from ..common.subscriptions import DELIVERY_TARGET_COLUMNS, delivery_target
from ..ports import LeasedWork, LeaseRequest
from . import psycopg_path


class PostgresDeliveries(CoreDeliveries):
    async def relax_durability(self) -> None:
        await psycopg_path.fetch_all(self._conn, _RELAX, {})

    async def lease_work(self, request: LeaseRequest) -> LeasedWork:
        """On an autocommit unit of work (`Storage.autocommit()`)."""
        rows = await psycopg_path.fetch_all(self._conn, _LEASE_WORK, _lease_params(request))
        work = LeasedWork([], {}, {})
        token = request.lease_token
        for row in rows:
            if row.id is None:
                continue
            work.deliveries.append(
                LeasedDelivery(row.id, row.event_id, row.subscription_id, row.attempt_count, token)
            )
            if row.e_id is not None and row.event_id not in work.events:
                work.events[row.event_id] = _stored_event(row)
            if row.s_id is not None and row.subscription_id not in work.targets:
                work.targets[row.subscription_id] = _target(row)
        room = request.limit - len(work.deliveries)
        if rows and rows[0].controlled_due and room > 0:
            work = work.merged(await self._lease_controlled(request, room))
        return work

    async def _lease_controlled(self, request: LeaseRequest, room: int) -> LeasedWork:
        async with psycopg_path.transaction(self._conn):
            await self.relax_durability()
            locked = await self._conn.execute(
                with_due_work(request).with_for_update(of=SUBSCRIPTIONS, skip_locked=True)
            )
            return await lease_controlled(self._conn, request, [r.id for r in locked], room)

    async def record_attempts(self, records: Sequence[AttemptRecord]) -> None:
        if records:
            batch = psycopg_path.json_document(attempt_values(records))
            await psycopg_path.fetch_all(self._conn, _RECORD, {"batch": batch})
            await push_after_too_many_requests(self._conn, records)


def _lease_params(request: LeaseRequest) -> dict[str, Any]:
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


def _stored_event(row: Any) -> StoredEvent:
    """The leased row's event (columns `e_*`). psycopg reads timestamps in the session's time
    zone, so they are turned into UTC here."""
    event = Event(
        row.e_id,
        row.e_tenant_id,
        row.e_type,
        row.e_entity_id,
        row.e_data,
        row.e_previous,
        row.e_occurred_at.astimezone(UTC),
        row.e_published_at.astimezone(UTC),
    )
    return StoredEvent(event, FeedPosition(row.e_tx, row.e_seq))


def _target(row: Any) -> DeliveryTarget:
    """The leased row's subscription (columns `s_*`)."""
    expires_at = row.s_previous_secret_expires_at
    return delivery_target(
        row.s_id,
        row.s_tenant_id,
        row.s_url,
        row.s_status,
        row.s_payload_mode,
        row.s_secret,
        row.s_previous_secret,
        expires_at.astimezone(UTC) if expires_at else None,
        row.s_headers or {},
    )


_RELAX = "SELECT set_config('synchronous_commit', 'off', true)"
# Subscriptions under delivery controls (the partial index ix_subscriptions_controlled): the
# plain lease leaves them to `lease_controlled`, and tells whether any of them has work now.
_CONTROLLED = CONTROLLED_SQL
_CONTROLLED_DUE = f"""
    SELECT EXISTS (
        SELECT 1 FROM subscriptions AS cs
        WHERE ({_CONTROLLED})
          AND (cs.next_slot_at IS NULL OR cs.next_slot_at <= %(now)s)
          AND cs.id <> ALL(CAST(%(full)s AS text[]))
          AND NOT (cs.ordering = 'fifo' AND EXISTS (
              SELECT 1 FROM deliveries AS cf
              WHERE cf.subscription_id = cs.id AND cf.status = 'pending'
                AND cf.lease_token IS NOT NULL AND cf.next_attempt_at > %(now)s))
          AND EXISTS (
              SELECT 1 FROM deliveries AS cd
              WHERE cd.subscription_id = cs.id AND cd.status = 'pending'
                AND cd.next_attempt_at <= %(now)s)
    ) AS controlled_due
"""

# The lease, the first part of _LEASE_WORK (parameters: `_lease_params`).
# `id = ANY(ARRAY(subquery))` makes PostgreSQL run the small subquery first and then look rows
# up by primary key; `id IN (subquery)` let it hash-join against every due row.
# The re-checks of the chosen rows say `(status = 'pending') IS TRUE`, which the planner cannot
# match to the partial index ix_deliveries_due: with many delivered rows in the table (their
# next_attempt_at NULL) it underestimates the due rows a hundredfold (it multiplies the two
# conditions' selectivities, which are correlated) and then filtered the whole due backlog
# through that index for the ids instead of looking them up by primary key: 30-60 ms per lease
# with 1,000,000 old rows and 10,000 due, against 2-8 ms (docs/PERFORMANCE.md, Growth).
_LEASE = f"""
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
                      AND subscription_id <> ALL(ARRAY(
                          SELECT id FROM subscriptions WHERE {_CONTROLLED}))
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
        AND (d.status = 'pending') IS TRUE AND d.next_attempt_at <= %(now)s
        ORDER BY d.next_attempt_at
        LIMIT CAST(%(limit)s AS int)
        FOR UPDATE SKIP LOCKED
    ))
    AND (status = 'pending') IS TRUE AND next_attempt_at <= %(now)s
    RETURNING id, event_id, subscription_id, attempt_count
"""

# The event's columns as e_<name>, the subscription's as s_<name>.
_EVENT_VALUES = ", ".join(f"e.{column.name} AS e_{column.name}" for column in EVENT_COLUMNS)
_TARGET_VALUES = ", ".join(
    f"s.{column.name} AS s_{column.name}" for column in DELIVERY_TARGET_COLUMNS
)
# set_config(..., true) holds for this statement's own transaction, which commits when the
# statement ends; with no row leased nothing was written and there is no flush to wait for.
_LEASE_WORK = f"""
    WITH leased AS ({_LEASE})
    SELECT leased.id, leased.event_id, leased.subscription_id, leased.attempt_count,
           controlled.controlled_due, {_EVENT_VALUES}, {_TARGET_VALUES}
    FROM ({_CONTROLLED_DUE}) AS controlled
    LEFT JOIN leased ON true
    LEFT JOIN events AS e ON e.id = leased.event_id
    LEFT JOIN subscriptions AS s ON s.id = leased.subscription_id
    WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
"""

# One prepared statement for the whole batch, which travels as one JSON document (one
# json.dumps costs far less than adapting an array per column). The count is only there
# because the fast path fetches a result.
_RECORD = """
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
