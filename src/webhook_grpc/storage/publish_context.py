"""What a publish reads before it writes: which event types are registered, the field schemas
of their entities, and the tenants' active subscriptions. One round trip on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.models import SubscriptionStatus
from webhook_grpc.domain.projection import Classification
from webhook_grpc.domain.subscriptions import Recipient

from . import driver
from . import registry as registry_store
from . import subscriptions as subscription_store


@dataclass(frozen=True)
class PublishContext:
    known_types: set[str]
    schemas: dict[str, dict[str, Classification]]
    """Field rules by entity, for the entities of the known types."""
    recipients: dict[str, list[Recipient]]
    """Active subscriptions by tenant (every tenant asked for is a key)."""


async def load(
    conn: AsyncConnection, event_types: set[str], tenant_ids: set[str]
) -> PublishContext:
    if conn.dialect.name == "postgresql":
        return await _load_postgres(conn, event_types, tenant_ids)
    known, schemas = await registry_store.types_with_schemas(conn, event_types)
    found = await subscription_store.active_recipients(conn, tenant_ids)
    return PublishContext(known, schemas, _by_tenant(found, tenant_ids))


async def _load_postgres(
    conn: AsyncConnection, event_types: set[str], tenant_ids: set[str]
) -> PublishContext:
    [(rules, subscriptions)] = await driver.fetch_all(
        conn,
        _LOAD_POSTGRES,
        {
            "types": sorted(event_types),
            "tenants": sorted(tenant_ids),
            "active": SubscriptionStatus.ACTIVE.value,
        },
    )
    known, schemas = registry_store.known_and_schemas(rules)
    found = [Recipient(id, tenant_id, tuple(patterns)) for id, tenant_id, patterns in subscriptions]
    return PublishContext(known, schemas, _by_tenant(found, tenant_ids))


def _by_tenant(recipients: Iterable[Recipient], tenant_ids: set[str]) -> dict[str, list[Recipient]]:
    grouped: dict[str, list[Recipient]] = {tenant_id: [] for tenant_id in tenant_ids}
    for recipient in recipients:
        grouped[recipient.tenant_id].append(recipient)
    return grouped


# Both answers as JSON arrays in one row: [type, entity, path, classification] per field rule
# (path NULL for an entity without fields), [id, tenant_id, patterns] per subscription.
_LOAD_POSTGRES = """
    SELECT
        (SELECT coalesce(json_agg(json_build_array(t.type, t.entity, f.path, f.classification)),
                         '[]')
         FROM event_types t LEFT JOIN entity_fields f ON f.entity = t.entity
         WHERE t.type = ANY(%(types)s::text[])),
        (SELECT coalesce(json_agg(json_build_array(s.id, s.tenant_id, s.event_patterns)), '[]')
         FROM subscriptions s
         WHERE s.tenant_id = ANY(%(tenants)s::text[]) AND s.status = %(active)s)
"""
