"""When to try a delivery again: the backoff schedule and the endpoint's Retry-After (SPEC §4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Final

GONE: Final = int(HTTPStatus.GONE)
"""410: the endpoint asks to stop; the delivery is not retried and the subscription is disabled."""
# Statuses whose Retry-After header may push the next attempt back (SPEC §4).
RETRY_AFTER_STATUSES: Final = frozenset(
    {int(HTTPStatus.TOO_MANY_REQUESTS), int(HTTPStatus.SERVICE_UNAVAILABLE)}
)


@dataclass(frozen=True)
class RetryPolicy:
    """`schedule[n-1]` is the delay before attempt n; `max_attempts` counts the first attempt."""

    schedule: tuple[timedelta, ...]
    max_attempts: int

    def __post_init__(self) -> None:
        if not self.schedule:
            raise ValueError("retry schedule must have at least one step")
        if any(step < timedelta(0) for step in self.schedule):
            raise ValueError("retry schedule steps must not be negative")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")


def first_delay(policy: RetryPolicy) -> timedelta:
    """Delay before the first attempt (normally zero)."""
    return policy.schedule[0]


def delay_after_failure(
    policy: RetryPolicy, attempts_made: int, retry_after: timedelta | None
) -> timedelta | None:
    """Delay before the next attempt after `attempts_made` attempts failed; None to give up.

    A Retry-After longer than the scheduled step replaces it, capped at the schedule's longest
    step so that an endpoint cannot park a delivery for days.
    """
    if attempts_made < 0:
        raise ValueError("attempts_made must not be negative")
    if attempts_made >= policy.max_attempts:
        return None
    delay = policy.schedule[min(attempts_made, len(policy.schedule) - 1)]
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, max(policy.schedule))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Parse Retry-After (delta-seconds or HTTP-date); None when absent, past or garbage."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        try:
            return timedelta(seconds=int(value))
        except OverflowError:
            return timedelta.max
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # An HTTP-date is always GMT; a naive result means the header said "-0000".
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    delta = when - now
    return delta if delta >= timedelta(0) else None


def next_attempt_after_failure(
    policy: RetryPolicy,
    attempts_made: int,
    status_code: int | None,
    retry_after_header: str | None,
    now: datetime,
) -> datetime | None:
    """When a failed delivery is tried again; None when it is finished (FAILED).

    A 410 Gone ends the delivery at once (the endpoint asked to stop); a Retry-After header
    counts only on 429 and 503 (SPEC §4).
    """
    if status_code == GONE:
        return None
    retry_after = (
        parse_retry_after(retry_after_header, now) if status_code in RETRY_AFTER_STATUSES else None
    )
    delay = delay_after_failure(policy, attempts_made, retry_after)
    return None if delay is None else now + delay
