"""Per-subscription rate limits as GCRA, whose whole state is one timestamp (SPEC §11).

The generic cell rate algorithm keeps the "theoretical arrival time" (TAT) of the next attempt:
with an emission interval T = 1 / rate and a burst tolerance tau = (burst - 1) * T, an attempt
may start at `max(now, TAT - tau)`, and starting it moves TAT to `max(start, TAT) + T`. The
state fits in one column (`next_slot_at`) of the subscription's row, so every dispatcher process
reserves slots from the same state with one conditional UPDATE, and the limit holds across all
of them together, not per process.

Slots are reserved ahead: a dispatcher that leases five deliveries of a 10/s subscription gets
five start times 100 ms apart and waits for each, instead of asking again. An endpoint's 429 with
`Retry-After` pushes the state so that no slot starts before it has passed, for every process.
With no rate limit (0) the state still carries that Retry-After pause.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from .errors import InvalidArgument

MAX_RATE_LIMIT_PER_SECOND: Final = 1000
"""The highest `rate_limit_per_second` a subscription may set. One dispatcher process makes
1,000-2,000 attempts a second over all its endpoints together (docs/PERFORMANCE.md), and each
subscription at most `endpoint_concurrency` (16) at once, so 1,000/s to one endpoint already
asks for answers within 16 ms; a higher limit would cap nothing a dispatcher can reach. At
1,000/s a slot is 1 ms, about what the event loop's timers resolve; the stored column is a 32-bit
integer, which the proto's uint32 would overflow."""


def validate_rate_limit(per_second: int, field: str = "rate_limit_per_second") -> int:
    """`per_second` when it is 0 (no limit) up to MAX_RATE_LIMIT_PER_SECOND; else
    InvalidArgument naming `field`."""
    if not 0 <= per_second <= MAX_RATE_LIMIT_PER_SECOND:
        raise InvalidArgument(
            field,
            f"must be between 0 (no limit) and {MAX_RATE_LIMIT_PER_SECOND} attempts a second",
        )
    return per_second


@dataclass(frozen=True)
class RateLimit:
    """At most `per_second` attempts per second, of which `burst` may start back to back."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.per_second < 0:
            raise ValueError("per_second must not be negative (0 means no limit)")
        if self.burst < 1:
            raise ValueError("burst must be at least 1")

    @property
    def interval(self) -> timedelta:
        """T: the time one attempt uses up; zero when there is no limit."""
        return timedelta(seconds=1 / self.per_second) if self.per_second else timedelta(0)

    @property
    def tolerance(self) -> timedelta:
        """tau: how far ahead of its theoretical time an attempt may start."""
        return self.interval * (self.burst - 1)


@dataclass(frozen=True)
class RateState:
    """What is stored per subscription; None (no row value yet) reads as "free now"."""

    next_slot_at: datetime | None = None


@dataclass(frozen=True)
class Reservation:
    """Start times granted, earliest first, and the state to store in their place."""

    starts: tuple[datetime, ...]
    state: RateState


def reserve(limit: RateLimit, state: RateState, now: datetime, count: int = 1) -> Reservation:
    """Reserve `count` consecutive attempt slots from `now` on (`count` >= 1).

    Storage does the same in one statement, atomic under the row lock:
    `UPDATE ... SET next_slot_at = max(coalesce(next_slot_at, :now), :now) + :count * T
    RETURNING next_slot_at`, then `slots_ending_at` turns the returned value into start times."""
    if count < 1:
        raise ValueError("count must be at least 1")
    base = max(now, state.next_slot_at or now)
    after = RateState(base + limit.interval * count)
    return Reservation(slots_ending_at(limit, after, now, count), after)


def slots_ending_at(
    limit: RateLimit, after: RateState, now: datetime, count: int
) -> tuple[datetime, ...]:
    """The start times of the last `count` slots reserved at `now`, given the state after
    reserving them."""
    if after.next_slot_at is None:
        raise ValueError("a reservation always leaves a next_slot_at")
    base = after.next_slot_at - limit.interval * count
    return tuple(max(now, base + limit.interval * i - limit.tolerance) for i in range(count))


def next_start(limit: RateLimit, state: RateState, now: datetime) -> datetime:
    """When the next attempt could start, without reserving it."""
    if state.next_slot_at is None:
        return now
    return max(now, state.next_slot_at - limit.tolerance)


def after_retry_after(
    limit: RateLimit, state: RateState, now: datetime, retry_after: timedelta
) -> RateState:
    """The state after the endpoint answered 429 with `Retry-After` (already capped, see
    domain/retry.py): no attempt starts before `now + retry_after`. It only ever pushes later;
    a Retry-After earlier than the next slot changes nothing."""
    earliest = now + max(retry_after, timedelta(0))
    pushed = earliest + limit.tolerance
    current = state.next_slot_at
    return RateState(pushed if current is None or pushed > current else current)
