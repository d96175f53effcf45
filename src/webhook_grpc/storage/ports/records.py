"""What the services hand the repositories and get back, beside the domain types: the rows a
publish writes, and the questions and answers of leasing and publishing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from webhook_grpc.domain.deliveries import LeasedDelivery
from webhook_grpc.domain.models import StoredEvent
from webhook_grpc.domain.projection import Classification
from webhook_grpc.domain.subscriptions import DeliveryTarget, Recipient


class NewEvent(TypedDict):
    """An event as publishing stores it (already projected). A mapping rather than a dataclass:
    PostgreSQL's publish path sends the batch as one JSON document as it is."""

    id: str
    tenant_id: str
    type: str
    entity_id: str
    data: dict[str, Any]
    previous: dict[str, Any] | None
    occurred_at: datetime
    published_at: datetime
    idempotency_key: str | None
    trace_context: str | None
    """`TraceContext.text()` of the publisher's trace context, sent on with each delivery."""
    rules_version: int | None
    """`projection.rules_version` of the rules `data` and `previous` were projected with; None
    if unknown (readers then always project again)."""


class NewDelivery(TypedDict):
    """A delivery row written with its event (status pending, no lease)."""

    id: str
    tenant_id: str
    event_id: str
    subscription_id: str
    event_type: str
    status: str
    attempt_count: int
    next_attempt_at: datetime
    lease_token: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SealedSecrets:
    """One subscription's stored secrets, as sealed, for re-encryption."""

    subscription_id: str
    secret: str
    previous_secret: str | None


@dataclass(frozen=True)
class PublishContext:
    """What a publish reads before it writes."""

    known_types: set[str]
    schemas: dict[str, dict[str, Classification]]
    """Field rules by entity, for the entities of the known types."""
    recipients: dict[str, list[Recipient]]
    """Active subscriptions by tenant (every tenant asked for is a key)."""


class StaleContext(Exception):
    """The publish context given to `insert_with_deliveries` (one a driver kept from an
    earlier call) no longer matches the database: nothing was inserted; read it again."""


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
    """What one lease brought, and what attempting it takes."""

    deliveries: list[LeasedDelivery]
    events: dict[str, StoredEvent]
    """By event id; an event purged since is missing."""
    targets: dict[str, DeliveryTarget]
    """By subscription id; a subscription deleted since is missing."""
    schemas: dict[str, dict[str, Classification]] | None = None
    """Field rules by entity, for the entities of `events`, when the lease read them along
    (PostgreSQL, in the lease statement); None: the caller reads them from the registry."""

    def merged(self, other: LeasedWork) -> LeasedWork:
        schemas = (
            None if self.schemas is None or other.schemas is None else self.schemas | other.schemas
        )
        return LeasedWork(
            self.deliveries + other.deliveries,
            self.events | other.events,
            self.targets | other.targets,
            schemas,
        )


@dataclass(frozen=True)
class PortalGrant:
    """What a portal link or session grants: one tenant, until a time."""

    tenant_id: str
    expires_at: datetime


@dataclass(frozen=True)
class PortalLinkState:
    """Where a portal link stands, for telling a used link from an expired one."""

    expires_at: datetime
    used_at: datetime | None
