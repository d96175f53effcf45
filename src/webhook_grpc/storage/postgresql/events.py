"""PostgreSQL's publishing: what a publish reads in one round trip, kept between calls, and
the events with their deliveries in one atomic statement (no BEGIN/COMMIT round trips) that
also checks that what was kept is still current."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, LiteralString

from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.models import SubscriptionStatus
from webhook_grpc.domain.subscriptions import Recipient

from ..common.events import CoreEvents
from ..common.registry import known_and_schemas
from ..common.subscriptions import by_tenant
from ..ports import NewDelivery, NewEvent, PublishContext, StaleContext
from . import psycopg_path

ContextKey = tuple[tuple[str, ...], tuple[str, ...]]
"""The event types and the tenants a context was read for, each sorted."""


@dataclass(frozen=True)
class KeptContext(PublishContext):
    """A context as read, with what it was read for and the digest of the rows it came from,
    which the insert compares with the database's rows at that moment."""

    key: ContextKey = ((), ())
    digest: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    """The statement parameters that name the rows: the key's types and tenants."""


class KeptContexts:
    """The publish contexts this process read, by (types, tenants), so that a publish can
    skip the read: one round trip (and one PostgreSQL transaction) less per call. There is no
    invalidation to miss: the insert recomputes the digest in its own statement and inserts
    nothing if it differs (StaleContext), whichever process changed a subscription or a
    field rule. Bounded: emptied when full."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._kept: dict[ContextKey, KeptContext] = {}

    def get(self, key: ContextKey) -> KeptContext | None:
        return self._kept.get(key)

    def keep(self, context: KeptContext) -> None:
        if len(self._kept) >= self.LIMIT:
            self._kept.clear()
        self._kept[context.key] = context

    def forget(self, key: ContextKey) -> None:
        self._kept.pop(key, None)


class PostgresEvents(CoreEvents):
    def __init__(self, conn: AsyncConnection, kept: KeptContexts | None = None) -> None:
        super().__init__(conn)
        self._kept = kept

    async def publish_context(self, event_types: set[str], tenant_ids: set[str]) -> PublishContext:
        key = (tuple(sorted(event_types)), tuple(sorted(tenant_ids)))
        if self._kept is not None and (kept := self._kept.get(key)) is not None:
            return kept
        params = _context_params(key)
        [row] = await psycopg_path.fetch_all(self._conn, _CONTEXT, params)
        known, schemas = known_and_schemas(row.field_rules)
        found = [
            Recipient(id, tenant_id, tuple(patterns), filter)
            for id, tenant_id, patterns, filter in row.subscriptions
        ]
        context = KeptContext(known, schemas, by_tenant(found, tenant_ids), key, row.digest, params)
        # A context naming an unregistered type is not kept: the publish fails on it without
        # inserting, so no insert would ever find out that the type was registered since.
        if self._kept is not None and known == event_types:
            self._kept.keep(context)
        return context

    async def insert_with_deliveries(
        self,
        events: Sequence[NewEvent],
        deliveries: Sequence[NewDelivery],
        context: PublishContext | None = None,
    ) -> dict[str, FeedPosition]:
        if not events:
            return {}
        batch = psycopg_path.json_document({"events": events, "deliveries": deliveries})
        if not isinstance(context, KeptContext) or self._kept is None:
            rows = await psycopg_path.fetch_all(self._conn, _PUBLISH, {"batch": batch})
            return {row.id: FeedPosition(row.tx, row.seq) for row in rows}
        params = {**context.params, "batch": batch, "digest": context.digest}
        rows = await psycopg_path.fetch_all(self._conn, _PUBLISH_CHECKED, params)
        if not rows[0].still_current:
            self._kept.forget(context.key)
            raise StaleContext(f"{context.key} changed since it was read")
        return {row.id: FeedPosition(row.tx, row.seq) for row in rows if row.id is not None}


def _context_params(key: ContextKey) -> dict[str, Any]:
    # The lists as JSON text: psycopg adapts a str parameter for a fraction of what it spends
    # finding the element type of a list on every new cursor.
    types, tenants = key
    return {
        "types": json.dumps(types),
        "tenants": json.dumps(tenants),
        "active": SubscriptionStatus.ACTIVE.value,
    }


# Both answers as JSON arrays, ordered, so that the same rows give the same text and digest:
# [type, entity, path, classification] per field rule (path NULL for an entity without
# fields), [id, tenant_id, patterns, filter] per active subscription.
_FIELD_RULES: LiteralString = """
    (SELECT coalesce(json_agg(json_build_array(t.type, t.entity, f.path, f.classification)
                              ORDER BY t.type, f.path), '[]')
     FROM event_types t LEFT JOIN entity_fields f ON f.entity = t.entity
     WHERE t.type = ANY(ARRAY(SELECT json_array_elements_text(CAST(%(types)s AS json)))))
"""
_SUBSCRIPTIONS: LiteralString = """
    (SELECT coalesce(json_agg(json_build_array(s.id, s.tenant_id, s.event_patterns, s.filter)
                              ORDER BY s.id), '[]')
     FROM subscriptions s
     WHERE s.tenant_id = ANY(ARRAY(SELECT json_array_elements_text(CAST(%(tenants)s AS json))))
       AND s.status = %(active)s)
"""
_DIGEST: LiteralString = "md5(field_rules::text || ' ' || subscriptions::text)"
# OFFSET 0 keeps the planner from flattening the subquery, which aggregated each list twice.
_CONTEXT: LiteralString = (
    "SELECT field_rules, subscriptions, "
    + _DIGEST
    + " AS digest FROM (SELECT "
    + _FIELD_RULES
    + " AS field_rules, "
    + _SUBSCRIPTIONS
    + " AS subscriptions OFFSET 0) AS context"
)

# Events and their deliveries in one statement (a data-modifying CTE): atomic by itself, so
# publishing needs no BEGIN and COMMIT round trips. Joining on the inserted events drops the
# deliveries of an event skipped as an idempotent repeat, and gives each delivery its event's
# feed position. The batch travels as one JSON document: the statement text is the same for
# every batch size (prepared once), and one json.dumps costs far less than adapting a
# parameter per column and row. `_PUBLISH_CHECKED` inserts only if the digest of the context's
# rows, in the statement's own snapshot, is the one the rows were made from; its first column
# says whether it was (a row even when every event was an idempotent repeat).
_EVENTS: LiteralString = """
        INSERT INTO events (id, tenant_id, type, entity_id, data, previous, occurred_at,
                            published_at, idempotency_key, trace_context, rules_version)
        SELECT e.id, e.tenant_id, e.type, e.entity_id, e.data, e.previous, e.occurred_at,
               e.published_at, e.idempotency_key, e.trace_context, e.rules_version
        FROM batch, json_to_recordset(batch.doc -> 'events')
             AS e(id text, tenant_id text, type text, entity_id text, data json, previous json,
                  occurred_at timestamptz, published_at timestamptz, idempotency_key text,
                  trace_context text, rules_version bigint)
"""
_EVENTS_END: LiteralString = """
        ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id, tx, seq
"""
_DELIVERIES: LiteralString = """
        INSERT INTO deliveries (id, tenant_id, event_id, subscription_id, event_type, status,
                                attempt_count, next_attempt_at, lease_token, created_at,
                                updated_at, event_tx, event_seq)
        SELECT d.id, d.tenant_id, d.event_id, d.subscription_id, d.event_type, d.status,
               d.attempt_count, d.next_attempt_at, d.lease_token, d.created_at, d.updated_at,
               inserted.tx, inserted.seq
        FROM batch, json_to_recordset(batch.doc -> 'deliveries')
             AS d(id text, tenant_id text, event_id text, subscription_id text,
                  event_type text, status text, attempt_count int,
                  next_attempt_at timestamptz, lease_token text, created_at timestamptz,
                  updated_at timestamptz)
        JOIN inserted ON inserted.id = d.event_id
"""
_BATCH: LiteralString = "WITH batch AS (SELECT CAST(%(batch)s AS json) AS doc), "
_PUBLISH: LiteralString = (
    _BATCH
    + "inserted AS ("
    + _EVENTS
    + _EVENTS_END
    + "), delivered AS ("
    + _DELIVERIES
    + ") SELECT id, tx, seq FROM inserted"
)
_PUBLISH_CHECKED: LiteralString = (
    _BATCH
    + "checked AS (SELECT "
    + _DIGEST
    + " = %(digest)s AS still_current FROM (SELECT "
    + _FIELD_RULES
    + " AS field_rules, "
    + _SUBSCRIPTIONS
    + " AS subscriptions) AS context_rows), inserted AS ("
    + _EVENTS
    + ", checked WHERE checked.still_current"
    + _EVENTS_END
    + "), delivered AS ("
    + _DELIVERIES
    + ") SELECT checked.still_current, inserted.id, inserted.tx, inserted.seq"
    + " FROM checked LEFT JOIN inserted ON true"
)
