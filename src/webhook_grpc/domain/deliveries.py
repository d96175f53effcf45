"""What the dispatcher works on: a leased delivery, and the record of one finished attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from webhook_grpc.domain.models import AttemptError, DeliveryStatus


@dataclass(frozen=True)
class LeasedDelivery:
    """A due delivery this process holds; `lease_token` proves it when the attempt is recorded."""

    id: str
    event_id: str
    subscription_id: str
    attempt_count: int
    lease_token: str
    not_before: datetime | None = None
    """The slot the subscription's rate limit reserved for this attempt: not to start earlier."""
    interval: timedelta = timedelta(0)
    """The rate limit's interval between slots (zero without a rate limit)."""
    ordered: bool = False
    """Of a FIFO subscription: the next one waits until this attempt is recorded."""


@dataclass(frozen=True)
class AttemptRecord:
    """One finished attempt and what it decides for its delivery."""

    delivery_id: str
    subscription_id: str
    lease_token: str
    attempt_number: int
    attempted_at: datetime
    succeeded: bool
    status_code: int | None
    latency: timedelta
    error: AttemptError | None
    error_message: str
    response_body: str
    next_status: DeliveryStatus
    next_attempt_at: datetime | None
