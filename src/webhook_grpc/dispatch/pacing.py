"""When this process starts a rate-limited delivery, and when it hands one back instead.

Storage reserves each rate-limited delivery a slot of its subscription's GCRA state
(domain/rate_limit.py), shared by every dispatcher process: the delivery comes leased with its
slot (`not_before`) and the limit's interval. Slots that passed while the lease was loading, or
while this process was busy, are not made up in a burst: this process starts a subscription's
attempts at least an interval apart, and a delivery that would start more than an interval
after its slot (when other processes' slots may have come) is handed back, to be leased again on
a new slot. `SlotPacer` is that policy, without sleeping: the dispatcher waits until `start_at`
and asks `take`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from webhook_grpc.domain.deliveries import LeasedDelivery

# How late a slot may start, at least (an interval, for slower rates): timers and the event loop
# are not punctual to the millisecond.
SLOT_GRACE: Final = timedelta(milliseconds=20)
# Subscriptions remembered before those whose pace has passed are forgotten.
PACED_KEPT: Final = 1000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class SlotPacer:
    """Per subscription, the earliest time this process may start its next attempt."""

    def __init__(self) -> None:
        self._next_start: dict[str, datetime] = {}

    def start_at(self, delivery: LeasedDelivery) -> datetime | None:
        """When the delivery may start: its slot, or later when this process started the
        subscription's previous attempt less than an interval ago; None without a slot."""
        if delivery.not_before is None:
            return None
        return max(delivery.not_before, self._next_start.get(delivery.subscription_id, _EPOCH))

    def take(self, delivery: LeasedDelivery, now: datetime) -> bool:
        """Start the delivery `now` (True), or hand it back (False) when that is more than an
        interval (at least SLOT_GRACE) after its slot."""
        if delivery.not_before is None:
            return True
        if now > delivery.not_before + max(delivery.interval, SLOT_GRACE):
            return False
        if len(self._next_start) > PACED_KEPT:
            self._next_start = {s: t for s, t in self._next_start.items() if t > now}
        self._next_start[delivery.subscription_id] = now + delivery.interval
        return True

    def __len__(self) -> int:
        """How many subscriptions' pace is remembered."""
        return len(self._next_start)
