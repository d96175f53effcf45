"""What publishing and the dispatcher need of a subscription, without the rest of it."""

from __future__ import annotations

from dataclasses import dataclass, field

from webhook_grpc.domain.models import PayloadMode
from webhook_grpc.domain.signing import SigningKeys


@dataclass(frozen=True)
class Recipient:
    """What publishing needs of a subscription: whom to deliver to, for which events."""

    id: str
    tenant_id: str
    event_patterns: tuple[str, ...]
    filter: str = ""


@dataclass(frozen=True)
class DeliveryTarget:
    """What the dispatcher needs of a subscription to make an attempt."""

    id: str
    tenant_id: str
    url: str
    active: bool
    payload_mode: PayloadMode
    keys: SigningKeys
    headers: dict[str, str] = field(default_factory=dict)
