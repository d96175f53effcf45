"""PostgreSQL's leasing and attempt recording, each one prepared statement.

Leasing is one autocommit statement (one round trip, no BEGIN/COMMIT): the lease UPDATE as a
data-modifying CTE that skips rows other dispatchers are leasing right now, joined to the
events and subscriptions of the leased rows, and committed without waiting for the WAL flush
(see `relax_durability` in the port for why that is safe)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, timedelta
from typing import Any

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.deliveries import AttemptRecord, LeasedDelivery
from webhook_grpc.domain.models import Event, StoredEvent
from webhook_grpc.domain.patterns import entity_of
from webhook_grpc.domain.projection import Classification
from webhook_grpc.domain.rate_limit import RateLimit
from webhook_grpc.domain.subscriptions import DeliveryTarget
from webhook_grpc.domain.trace_context import TraceContext

from ..common.controlled_lease import CONTROLLED_SQL, push_after_too_many_requests
from ..common.deliveries import LEASE_WINDOW, CoreDeliveries, attempt_values
from ..common.events import EVENT_COLUMNS
from ..common.subscriptions import DELIVERY_TARGET_COLUMNS, delivery_target
from ..ports import LeasedWork, LeaseRequest
from . import psycopg_path
from .repositories import HORIZON_SQL


class PostgresDeliveries(CoreDeliveries):
    async def relax_durability(self) -> None:
        await psycopg_path.fetch_all(self._conn, _RELAX, {})

    async def lease_work(self, request: LeaseRequest) -> LeasedWork:
        """On an autocommit unit of work (`Storage.autocommit()`)."""
        rows = await psycopg_path.fetch_all(self._conn, _LEASE_WORK, _lease_params(request))
        work = LeasedWork([], {}, {}, {})
        token = request.lease_token
        for row in rows:
            if row.id is None:
                continue
            work.deliveries.append(
                LeasedDelivery(row.id, row.event_id, row.subscription_id, row.attempt_count, token)
            )
            _add_event_and_target(work, row)
        room = request.limit - len(work.deliveries)
        if rows and rows[0].controlled_due and room > 0:
            work = work.merged(await self._lease_controlled(request, room))
        return work

    async def _lease_controlled(self, request: LeaseRequest, room: int) -> LeasedWork:
        """Up to `room` deliveries of subscriptions under delivery controls, in one statement
        (`_LEASE_CONTROLLED`)."""
        params = _lease_params(request) | {"limit": room}
        rows = await psycopg_path.fetch_all(self._conn, _LEASE_CONTROLLED, params)
        work = LeasedWork([], {}, {}, {})
        for row in rows:
            limit = RateLimit(row.rate) if row.rate > 0 else None
            work.deliveries.append(
                LeasedDelivery(
                    row.id,
                    row.event_id,
                    row.subscription_id,
                    row.attempt_count,
                    request.lease_token,
                    not_before=row.start.astimezone(UTC) if row.start is not None else None,
                    interval=limit.interval if limit is not None else timedelta(0),
                    ordered=row.fifo,
                )
            )
            _add_event_and_target(work, row)
        return work

    async def record_attempts(self, records: Sequence[AttemptRecord]) -> int:
        if not records:
            return 0
        batch = psycopg_path.json_document(attempt_values(records))
        rows = await psycopg_path.fetch_all(self._conn, _RECORD, {"batch": batch})
        await push_after_too_many_requests(self._conn, records)
        return int(rows[0].gone)


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


def _add_event_and_target(work: LeasedWork, row: Any) -> None:
    """The leased row's event and subscription, unless purged or deleted since, and its
    entity's field rules (`e_fields`, on the first row of each entity; `_FIELD_RULES`)."""
    if row.e_id is not None:
        if row.event_id not in work.events:
            work.events[row.event_id] = _stored_event(row)
        assert work.schemas is not None
        schema = work.schemas.setdefault(entity_of(row.e_type), {})
        for path, classification in row.e_fields or ():
            schema[path] = Classification(classification)
    if row.s_id is not None and row.subscription_id not in work.targets:
        work.targets[row.subscription_id] = _target(row)


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
        trace_context=TraceContext.from_text(row.e_trace_context),
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
# plain lease leaves them to `_LEASE_CONTROLLED`, and tells whether any of them has work now.
# "Has a due delivery" is a scalar subquery, one probe of ix_deliveries_subscription_feed per
# controlled subscription: as EXISTS, PostgreSQL may turn it into a semi-join that reads every
# pending delivery of those subscriptions (12 ms at one FIFO subscription with 20,000 pending),
# and with LIMIT 1 alone it may walk ix_deliveries_due through every due row of every
# subscription (47 ms beside 100,000 others); the ORDER BY in that index's order rules both out.
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
          AND (SELECT true FROM deliveries AS cd
               WHERE cd.subscription_id = cs.id AND cd.status = 'pending'
                 AND cd.next_attempt_at <= %(now)s
               ORDER BY cd.event_tx, cd.event_seq
               LIMIT 1)
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
# The field rules of the event's entity (domain/patterns.py's `entity_of`: the type up to its
# first dot) as [[path, classification], ...], read along with the lease instead of by a
# statement of their own (`registry.entity_fields`): on the first row of each entity only (a
# scalar subquery in a CASE branch runs only when taken), NULL on the others.
_ENTITY = "split_part(e.type, '.', 1)"
_FIELD_RULES = f"""
    CASE WHEN row_number() OVER (PARTITION BY {_ENTITY}) = 1 THEN (
        SELECT json_agg(json_build_array(f.path, f.classification))
        FROM entity_fields AS f WHERE f.entity = {_ENTITY})
    END AS e_fields
"""
_TARGET_VALUES = ", ".join(
    f"s.{column.name} AS s_{column.name}" for column in DELIVERY_TARGET_COLUMNS
)
# set_config(..., true) holds for this statement's own transaction, which commits when the
# statement ends; with no row leased nothing was written and there is no flush to wait for.
_LEASE_WORK = f"""
    WITH leased AS ({_LEASE})
    SELECT leased.id, leased.event_id, leased.subscription_id, leased.attempt_count,
           controlled.controlled_due, {_EVENT_VALUES}, {_FIELD_RULES}, {_TARGET_VALUES}
    FROM ({_CONTROLLED_DUE}) AS controlled
    LEFT JOIN leased ON true
    LEFT JOIN events AS e ON e.id = leased.event_id
    LEFT JOIN subscriptions AS s ON s.id = leased.subscription_id
    WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
"""

# The lease of subscriptions under delivery controls (SPEC §11; storage/common/controlled_lease.py
# tells the rules, and SQLite's path), in one autocommit statement:
# - `candidate` locks the rows of controlled subscriptions with due work, a free rate-limit slot
#   and, if FIFO, nothing in flight, FOR UPDATE SKIP LOCKED: another dispatcher leasing from one
#   holds its lock, and this statement skips it instead of waiting.
# - The other CTEs read this statement's snapshot, taken before those locks: a lease another
#   dispatcher committed in between would be invisible. Every controlled lease therefore writes
#   its subscription's row (`moved`; for FIFO without a rate limit an unchanged value, still a
#   new row version), and `locked` keeps only rows whose locked version is the one in the
#   snapshot (ctid); a changed one is left for the next lease.
# - A FIFO subscription's head is its oldest pending delivery in feed order, straight from
#   ix_deliveries_subscription_feed (LIMIT 1, no sort); it is leased when due, and only once no
#   transaction that could still commit an older event is running (the feed's horizon,
#   docs/FEED_ORDERING.md), so a late commit cannot slip a delivery in before it.
# - A rate-limited one's earliest due deliveries, up to its room and a second's worth of slots,
#   each on its slot: base + (n - 1) * interval, base = max(now, next_slot_at); the lease lasts
#   as much longer as its slot is ahead, and `next_slot_at` moves to the last slot + interval
#   (domain/rate_limit.py's `reserve` with burst 1, as SQL).
# FIFO heads come first, then by subscription id and slot, up to `limit` in all.
_HORIZON = HORIZON_SQL.replace("%", "%%")
_LEASED = "f.lease_token IS NOT NULL AND f.status = 'pending'"
_LEASE_CONTROLLED = f"""
    WITH candidate AS MATERIALIZED (
        SELECT s.id, s.ordering, s.rate_limit_per_second AS rate, s.next_slot_at,
               s.ctid AS version
        FROM subscriptions AS s
        WHERE ({_CONTROLLED})
          AND (s.next_slot_at IS NULL OR s.next_slot_at <= %(now)s)
          AND s.id <> ALL(CAST(%(full)s AS text[]))
          AND (SELECT true FROM deliveries AS d
               WHERE d.subscription_id = s.id AND d.status = 'pending'
                 AND d.next_attempt_at <= %(now)s
               ORDER BY d.event_tx, d.event_seq
               LIMIT 1)
          AND NOT (s.ordering = 'fifo' AND EXISTS (
              SELECT 1 FROM deliveries AS f
              WHERE f.subscription_id = s.id AND {_LEASED} AND f.next_attempt_at > %(now)s))
        ORDER BY s.id
        LIMIT CAST(%(limit)s AS int)
        FOR UPDATE OF s SKIP LOCKED
    ), locked AS (
        SELECT c.id, c.ordering = 'fifo' AS fifo, c.rate,
               GREATEST(COALESCE(c.next_slot_at, %(now)s), %(now)s) AS base,
               CASE WHEN c.rate > 0 THEN make_interval(secs => 1.0 / c.rate) END AS step,
               GREATEST(LEAST(COALESCE(
                   (SELECT r.room
                    FROM unnest(CAST(%(room_ids)s AS text[]), CAST(%(room)s AS int[]))
                         AS r(subscription_id, room)
                    WHERE r.subscription_id = c.id),
                   CAST(%(per_subscription)s AS int)), c.rate), 1) AS quota
        FROM candidate AS c
        JOIN subscriptions AS seen ON seen.id = c.id AND seen.ctid = c.version
    ), pick AS (
        SELECT l.id AS subscription_id, head.id, 0 AS kind, head.next_attempt_at AS due
        FROM locked AS l
        CROSS JOIN LATERAL (
            SELECT d.id, d.next_attempt_at, d.event_tx FROM deliveries AS d
            WHERE d.subscription_id = l.id AND d.status = 'pending'
            ORDER BY d.event_tx, d.event_seq
            LIMIT 1
        ) AS head
        WHERE l.fifo AND head.next_attempt_at <= %(now)s AND head.event_tx < {_HORIZON}
        UNION ALL
        SELECT l.id, due.id, 1, due.next_attempt_at
        FROM locked AS l
        CROSS JOIN LATERAL (
            SELECT d.id, d.next_attempt_at FROM deliveries AS d
            WHERE d.subscription_id = l.id AND d.status = 'pending'
              AND d.next_attempt_at <= %(now)s
            ORDER BY d.next_attempt_at, d.id
            LIMIT l.quota
        ) AS due
        WHERE NOT l.fifo
    ), chosen AS (
        SELECT p.id, p.subscription_id, l.fifo, l.rate,
               l.base + l.step * (row_number() OVER (
                   PARTITION BY p.subscription_id ORDER BY p.due, p.id) - 1) AS start,
               row_number() OVER (ORDER BY p.kind, p.subscription_id, p.due, p.id) AS n
        FROM pick AS p JOIN locked AS l ON l.id = p.subscription_id
    ), leased AS (
        UPDATE deliveries AS d
        SET next_attempt_at = %(lease_until)s + GREATEST(c.start - %(now)s, interval '0'),
            lease_token = %(lease_token)s
        FROM chosen AS c
        WHERE c.n <= CAST(%(limit)s AS int)
          AND d.id = c.id AND d.status = 'pending' AND d.next_attempt_at <= %(now)s
        RETURNING d.id, d.event_id, d.subscription_id, d.attempt_count, c.fifo, c.rate, c.start,
                  c.n
    ), moved AS (
        UPDATE subscriptions AS s
        SET next_slot_at = CASE WHEN s.rate_limit_per_second > 0
            THEN (SELECT max(leased.start) + make_interval(secs => 1.0 / s.rate_limit_per_second)
                  FROM leased WHERE leased.subscription_id = s.id)
            ELSE s.next_slot_at END
        WHERE s.id IN (SELECT leased.subscription_id FROM leased)
        RETURNING 1
    )
    SELECT leased.id, leased.event_id, leased.subscription_id, leased.attempt_count,
           leased.fifo, leased.rate, leased.start, {_EVENT_VALUES}, {_FIELD_RULES},
           {_TARGET_VALUES}
    FROM leased
    LEFT JOIN events AS e ON e.id = leased.event_id
    LEFT JOIN subscriptions AS s ON s.id = leased.subscription_id
    WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
    ORDER BY leased.n
"""

# One prepared statement for the whole batch, which travels as one JSON document (one
# json.dumps costs far less than adapting an array per column). An attempt whose delivery is
# gone (purged by retention while the attempt was in flight) is left out, not inserted to fail
# the foreign key and the whole batch with it: `live` holds the deliveries that are still there
# (FOR KEY SHARE: one deleted since the statement's snapshot is skipped, one not yet deleted
# stays until the commit), and the result says how many were left out.
# Relaxes its transaction's commit (as `relax_durability`) in the same round trip: an attempt
# recorded twice after a crash is what at-least-once delivery allows.
_RECORD = """
    WITH batch AS (
        SELECT * FROM json_to_recordset(CAST(%(batch)s AS json))
            AS b(delivery_id text, subscription_id text, attempt_number int,
                 attempted_at timestamptz, succeeded boolean, status_code int,
                 latency_ms float8, error text, error_message text, response_body text,
                 next_status text, next_attempt_at timestamptz, lease_token text)
    ), live AS (
        SELECT d.id FROM deliveries AS d
        WHERE d.id = ANY(ARRAY(SELECT delivery_id FROM batch))
        FOR KEY SHARE
    ), recorded AS (
        INSERT INTO attempts (delivery_id, subscription_id, attempt_number, attempted_at,
                              succeeded, status_code, latency_ms, error, error_message,
                              response_body)
        SELECT delivery_id, subscription_id, attempt_number, attempted_at, succeeded,
               status_code, latency_ms, error, error_message, response_body
        FROM batch JOIN live ON live.id = batch.delivery_id
        RETURNING 1
    ), moved AS (
        UPDATE deliveries AS d
        SET status = b.next_status, attempt_count = b.attempt_number,
            next_attempt_at = b.next_attempt_at, lease_token = NULL, updated_at = b.attempted_at
        FROM batch AS b
        WHERE d.id = b.delivery_id AND d.lease_token = b.lease_token
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM batch) - (SELECT count(*) FROM recorded) AS gone,
           (SELECT count(*) FROM moved) AS moved,
           set_config('synchronous_commit', 'off', true) AS relaxed
"""
