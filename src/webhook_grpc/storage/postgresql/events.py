"""PostgreSQL's publishing: what a publish reads in one round trip, and the events with their
deliveries in one atomic statement (no BEGIN/COMMIT round trips)."""

from __future__ import annotations

from collections.abc import Sequence

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.models import SubscriptionStatus
from webhook_grpc.domain.subscriptions import Recipient

from ..common.events import CoreEvents
from ..common.registry import known_and_schemas
from ..common.subscriptions import by_tenant
from ..ports import NewDelivery, NewEvent, PublishContext
from . import psycopg_path


class PostgresEvents(CoreEvents):
    async def publish_context(self, event_types: set[str], tenant_ids: set[str]) -> PublishContext:
        [row] = await psycopg_path.fetch_all(
            self._conn,
            _CONTEXT,
            {
                "types": sorted(event_types),
                "tenants": sorted(tenant_ids),
                "active": SubscriptionStatus.ACTIVE.value,
            },
        )
        known, schemas = known_and_schemas(row.field_rules)
        found = [
            Recipient(id, tenant_id, tuple(patterns), filter)
            for id, tenant_id, patterns, filter in row.subscriptions
        ]
        return PublishContext(known, schemas, by_tenant(found, tenant_ids))

    async def insert_with_deliveries(
        self, events: Sequence[NewEvent], deliveries: Sequence[NewDelivery]
    ) -> dict[str, FeedPosition]:
        if not events:
            return {}
        batch = psycopg_path.json_document({"events": events, "deliveries": deliveries})
        rows = await psycopg_path.fetch_all(self._conn, _PUBLISH, {"batch": batch})
        return {row.id: FeedPosition(row.tx, row.seq) for row in rows}


# Both answers as JSON arrays in one row: [type, entity, path, classification] per field rule
# (path NULL for an entity without fields), [id, tenant_id, patterns, filter] per subscription.
_CONTEXT = """
    SELECT
        (SELECT coalesce(json_agg(json_build_array(t.type, t.entity, f.path, f.classification)),
                         '[]')
         FROM event_types t LEFT JOIN entity_fields f ON f.entity = t.entity
         WHERE t.type = ANY(%(types)s::text[])) AS field_rules,
        (SELECT coalesce(json_agg(json_build_array(s.id, s.tenant_id, s.event_patterns,
                                                   s.filter)), '[]')
         FROM subscriptions s
         WHERE s.tenant_id = ANY(%(tenants)s::text[]) AND s.status = %(active)s) AS subscriptions
"""

# Events and their deliveries in one statement (a data-modifying CTE): atomic by itself, so
# publishing needs no BEGIN and COMMIT round trips. Joining on the inserted events drops the
# deliveries of an event skipped as an idempotent repeat, and gives each delivery its event's
# feed position. The batch travels as one JSON
# document: the statement text is the same for every batch size (prepared once), and one
# json.dumps costs far less than adapting a parameter per column and row.
_PUBLISH = """
    WITH batch AS (SELECT CAST(%(batch)s AS json) AS doc),
    inserted AS (
        INSERT INTO events (id, tenant_id, type, entity_id, data, previous, occurred_at,
                            published_at, idempotency_key, trace_context, rules_version)
        SELECT e.id, e.tenant_id, e.type, e.entity_id, e.data, e.previous, e.occurred_at,
               e.published_at, e.idempotency_key, e.trace_context, e.rules_version
        FROM batch, json_to_recordset(batch.doc -> 'events')
             AS e(id text, tenant_id text, type text, entity_id text, data json, previous json,
                  occurred_at timestamptz, published_at timestamptz, idempotency_key text,
                  trace_context text, rules_version bigint)
        ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id, tx, seq
    ), delivered AS (
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
    )
    SELECT id, tx, seq FROM inserted
"""
