"""The domain's records: what services pass between the API, storage and the dispatcher."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.trace_context import TraceContext

T = TypeVar("T")


class SubscriptionStatus(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class DisabledReason(enum.StrEnum):
    MANUAL = "manual"
    FAILURE_RATE = "failure_rate"
    ENDPOINT_GONE = "endpoint_gone"


class PayloadMode(enum.StrEnum):
    FULL = "full"
    THIN = "thin"


class SigningAlgorithm(enum.StrEnum):
    """How deliveries are signed (SPEC §12): a shared HMAC secret, or an Ed25519 key pair whose
    public half receivers verify with."""

    HMAC_SHA256 = "hmac_sha256"
    ED25519 = "ed25519"


class Ordering(enum.StrEnum):
    """Whether deliveries to a subscription may overtake each other (SPEC §11)."""

    UNORDERED = "unordered"
    FIFO = "fifo"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AttemptError(enum.StrEnum):
    TIMEOUT = "timeout"
    CONNECT = "connect"
    DNS = "dns"
    TLS = "tls"
    HTTP_STATUS = "http_status"
    REFUSED_TARGET = "refused_target"


@dataclass(frozen=True)
class Subscription:
    id: str
    tenant_id: str
    url: str
    event_patterns: tuple[str, ...]
    description: str
    status: SubscriptionStatus
    disabled_reason: DisabledReason | None
    payload_mode: PayloadMode
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None
    previous_secret_expires_at: datetime | None
    signing_algorithm: SigningAlgorithm = SigningAlgorithm.HMAC_SHA256
    public_key: str = ""
    """Ed25519 only: ``whpk_…``."""
    filter: str = ""
    """A CEL expression over the projected event (domain/filters.py); empty means none."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra request headers sent with every delivery (domain/custom_headers.py)."""
    ordering: Ordering = Ordering.UNORDERED
    rate_limit_per_second: int = 0
    """Attempts per second over every dispatcher process together; 0 means no limit."""


@dataclass(frozen=True)
class SubscriptionDraft:
    """A validated request to create a subscription."""

    tenant_id: str
    url: str
    event_patterns: tuple[str, ...]
    description: str
    payload_mode: PayloadMode
    metadata: dict[str, str]
    secret: str
    signing_algorithm: SigningAlgorithm = SigningAlgorithm.HMAC_SHA256
    filter: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    ordering: Ordering = Ordering.UNORDERED
    rate_limit_per_second: int = 0


@dataclass(frozen=True)
class SubscriptionChanges:
    """Fields to replace in an update; None means unchanged."""

    url: str | None = None
    event_patterns: tuple[str, ...] | None = None
    description: str | None = None
    payload_mode: PayloadMode | None = None
    metadata: dict[str, str] | None = None
    filter: str | None = None
    """An empty string removes the filter."""
    headers: dict[str, str] | None = None
    ordering: Ordering | None = None
    rate_limit_per_second: int | None = None


@dataclass(frozen=True)
class Event:
    id: str
    tenant_id: str
    type: str
    entity_id: str
    data: dict[str, Any]
    previous: dict[str, Any] | None
    occurred_at: datetime
    published_at: datetime
    cursor: str = ""
    trace_context: TraceContext | None = None
    """The publisher's trace context, sent on with each delivery (never in a body or the feed)."""


@dataclass(frozen=True)
class StoredEvent:
    """A published event with its place in the feed (the service makes the cursor from it),
    and the `rules_version` of the rules it was projected with when stored (None before
    versions were stored)."""

    event: Event
    position: FeedPosition
    rules_version: int | None = None


@dataclass(frozen=True)
class EventType:
    """A registered event type, built in or from RegisterEventType (fields are kept per entity)."""

    type: str
    entity: str
    description: str
    built_in: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Attempt:
    attempt_number: int
    attempted_at: datetime
    status_code: int | None
    latency: timedelta
    error: AttemptError | None
    error_message: str
    response_body: str


@dataclass(frozen=True)
class Delivery:
    id: str
    tenant_id: str
    event_id: str
    subscription_id: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    attempts: tuple[Attempt, ...] = field(default=())


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str
