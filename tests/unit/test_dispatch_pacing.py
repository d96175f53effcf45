"""The dispatcher's rate-limit pacing (dispatch/pacing.py): each rate-limited delivery starts on
its GCRA slot, and one that would start more than an interval late is handed back instead of
bursting. Driven by a clock the test moves: no HTTP server, no database, no sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.clock import MovableClock
from webhook_grpc.dispatch.pacing import PACED_KEPT, SLOT_GRACE, SlotPacer
from webhook_grpc.domain.deliveries import LeasedDelivery
from webhook_grpc.domain.rate_limit import RateLimit, RateState, reserve

START = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def leased(
    limit: RateLimit, now: datetime, count: int, subscription_id: str = "sub_a"
) -> list[LeasedDelivery]:
    """`count` deliveries leased at `now` with consecutive slots, as storage hands them out."""
    reservation = reserve(limit, RateState(), now, count)
    return [
        LeasedDelivery(
            id=f"dlv_{subscription_id}_{i}",
            event_id=f"evt_{i}",
            subscription_id=subscription_id,
            attempt_count=0,
            lease_token="lease",
            not_before=start,
            interval=limit.interval,
        )
        for i, start in enumerate(reservation.starts)
    ]


def run(
    pacer: SlotPacer, clock: MovableClock, deliveries: list[LeasedDelivery]
) -> list[tuple[str, timedelta]]:
    """What a lane's worker does with each delivery in turn: wait until it may start (the clock
    jumps there), then start it or hand it back. Returns (`started`/`handed back`, time since
    START) per delivery."""
    outcomes = []
    for delivery in deliveries:
        start = pacer.start_at(delivery)
        if start is not None and start > clock():
            clock.now = start
        outcome = "started" if pacer.take(delivery, clock()) else "handed back"
        outcomes.append((outcome, clock() - START))
    return outcomes


def test_on_time_deliveries_start_on_their_slots() -> None:
    clock = MovableClock(START)
    deliveries = leased(RateLimit(per_second=10), START, 3)
    assert run(SlotPacer(), clock, deliveries) == [
        ("started", 0 * MS),
        ("started", 100 * MS),
        ("started", 200 * MS),
    ]


def test_slots_missed_by_more_than_an_interval_are_handed_back_not_burst() -> None:
    """The lease took 250 ms to come back (a busy process): the slots at 0 and 100 ms are
    gone, since other processes may have used the ones after them; the one at 200 ms starts
    late, and the next waits a whole interval after it instead of following at once."""
    clock = MovableClock(START)
    deliveries = leased(RateLimit(per_second=10), START, 4)
    clock.advance(250 * MS)
    assert run(SlotPacer(), clock, deliveries) == [
        ("handed back", 250 * MS),
        ("handed back", 250 * MS),
        ("started", 250 * MS),  # 50 ms late: within one interval
        ("started", 350 * MS),  # its slot was 300 ms: an interval after the late start
    ]


def test_a_slot_pushed_past_its_interval_by_the_previous_late_start_is_handed_back() -> None:
    """Lateness carries over: a late start pushes the next attempt, and the one that would then
    start more than an interval after its slot goes back too (no burst to catch up)."""
    clock = MovableClock(START)
    pacer = SlotPacer()
    first, second = leased(RateLimit(per_second=10), START, 2)
    clock.advance(99 * MS)
    assert pacer.take(first, clock())  # 99 ms late: still within its interval
    assert pacer.start_at(second) == START + 199 * MS
    clock.now = START + 201 * MS  # the worker woke late: 101 ms after the second slot
    assert not pacer.take(second, clock())


def test_fast_rates_get_a_grace_of_some_milliseconds() -> None:
    """At 1,000/s a slot is 1 ms: timers are not that punctual, so a slot may start up to
    SLOT_GRACE late; beyond that it is handed back."""
    clock = MovableClock(START)
    pacer = SlotPacer()
    on_time, late = leased(RateLimit(per_second=1000), START, 2)
    clock.advance(SLOT_GRACE)
    assert pacer.take(on_time, clock())
    clock.advance(2 * MS)
    assert late.not_before is not None and clock() - late.not_before > SLOT_GRACE
    assert not pacer.take(late, clock())


def test_a_delivery_without_a_rate_limit_starts_at_once() -> None:
    pacer = SlotPacer()
    free = LeasedDelivery("dlv_1", "evt_1", "sub_free", 0, "lease")
    assert pacer.start_at(free) is None
    assert pacer.take(free, START)
    assert len(pacer) == 0  # nothing remembered for it


def test_subscriptions_pace_independently_and_passed_paces_are_forgotten() -> None:
    clock = MovableClock(START)
    pacer = SlotPacer()
    [a] = leased(RateLimit(per_second=1), START, 1, "sub_a")
    [b] = leased(RateLimit(per_second=1), START, 1, "sub_b")
    assert pacer.take(a, clock())
    assert pacer.start_at(b) == START  # a's pace does not hold b back
    for i in range(PACED_KEPT):
        [other] = leased(RateLimit(per_second=1000), START, 1, f"sub_{i}")
        assert pacer.take(other, clock())
    clock.advance(10 * MS)  # every 1,000/s pace has passed; a's (1 s) has not
    assert pacer.take(b, clock())
    assert len(pacer) == 2
    [a_next] = leased(RateLimit(per_second=1), START + 10 * MS, 1, "sub_a")
    assert pacer.start_at(a_next) == START + timedelta(seconds=1)
