from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.clock import MovableClock
from webhook_grpc.domain.errors import InvalidArgument
from webhook_grpc.domain.rate_limit import (
    MAX_RATE_LIMIT_PER_SECOND,
    RateLimit,
    RateState,
    after_retry_after,
    next_start,
    reserve,
    slots_ending_at,
    validate_rate_limit,
)

START = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
SECOND = timedelta(seconds=1)


def test_slots_are_spaced_by_the_interval() -> None:
    clock = MovableClock(START)
    limit = RateLimit(per_second=20)
    state = RateState()
    starts = []
    for _ in range(3):
        reservation = reserve(limit, state, clock())
        starts.extend(reservation.starts)
        state = reservation.state
    assert starts == [START, START + 50 * MS, START + 100 * MS]
    assert state.next_slot_at == START + 150 * MS


def test_a_batch_reservation_equals_one_at_a_time() -> None:
    limit = RateLimit(per_second=10, burst=3)
    state = RateState(START + 20 * MS)
    batch = reserve(limit, state, START, count=6)
    one_by_one = []
    for _ in range(6):
        reservation = reserve(limit, state, START)
        one_by_one.extend(reservation.starts)
        state = reservation.state
    assert batch.starts == tuple(one_by_one)
    assert batch.state == state


def test_storage_update_then_slots_ending_at_gives_the_same_starts() -> None:
    limit = RateLimit(per_second=8, burst=2)
    state = RateState(START + 300 * MS)
    reservation = reserve(limit, state, START, count=4)
    assert slots_ending_at(limit, reservation.state, START, 4) == reservation.starts


def test_a_burst_refills_while_idle() -> None:
    clock = MovableClock(START)
    limit = RateLimit(per_second=5, burst=3)
    first = reserve(limit, RateState(), clock(), count=4)
    assert first.starts == (START, START, START, START + 200 * MS)
    clock.advance(10 * SECOND)
    again = reserve(limit, first.state, clock(), count=4)
    assert again.starts == (clock(),) * 3 + (clock() + 200 * MS,)


def test_no_limit_never_waits() -> None:
    reservation = reserve(RateLimit(per_second=0), RateState(), START, count=100)
    assert set(reservation.starts) == {START}


def test_retry_after_pushes_every_later_slot() -> None:
    clock = MovableClock(START)
    limit = RateLimit(per_second=20, burst=4)
    state = reserve(limit, RateState(), clock()).state
    state = after_retry_after(limit, state, clock(), 30 * SECOND)
    assert next_start(limit, state, clock()) == START + 30 * SECOND
    clock.advance(SECOND)
    assert reserve(limit, state, clock(), count=2).starts == (
        START + 30 * SECOND,
        START + 30 * SECOND + 50 * MS,
    )


def test_retry_after_never_pulls_slots_earlier() -> None:
    limit = RateLimit(per_second=1)
    state = reserve(limit, RateState(), START, count=60).state
    assert after_retry_after(limit, state, START, 5 * SECOND) == state


def test_retry_after_pauses_an_unlimited_subscription() -> None:
    limit = RateLimit(per_second=0)
    state = after_retry_after(limit, RateState(), START, 2 * SECOND)
    assert reserve(limit, state, START + SECOND, count=2).starts == (START + 2 * SECOND,) * 2
    assert next_start(limit, state, START + 3 * SECOND) == START + 3 * SECOND


def test_two_dispatchers_sharing_the_row_stay_under_the_limit() -> None:
    """Two processes reserve from one stored state, each as fast as it can, for 10 s."""
    clock = MovableClock(START)
    limit = RateLimit(per_second=20, burst=1)
    row = RateState()
    starts: list[datetime] = []
    while clock() < START + 10 * SECOND:
        for batch in (3, 5):  # dispatcher A leases 3 at a time, dispatcher B 5
            reservation = reserve(limit, row, clock(), count=batch)
            row = reservation.state
            starts.extend(s for s in reservation.starts if s < START + 10 * SECOND)
        clock.advance(7 * MS)
    per_second = [
        sum(1 for s in starts if START + i * SECOND <= s < START + (i + 1) * SECOND)
        for i in range(10)
    ]
    assert per_second == [20] * 10


@given(
    per_second=st.integers(min_value=1, max_value=200),
    burst=st.integers(min_value=1, max_value=10),
    steps=st.lists(
        st.tuples(st.integers(min_value=0, max_value=300), st.integers(min_value=1, max_value=8)),
        min_size=1,
        max_size=60,
    ),
)
def test_no_window_holds_more_than_the_rate_plus_a_burst(
    per_second: int, burst: int, steps: list[tuple[int, int]]
) -> None:
    limit = RateLimit(per_second=per_second, burst=burst)
    now, state, starts = START, RateState(), []
    for wait_ms, count in steps:
        now += wait_ms * MS
        reservation = reserve(limit, state, now, count)
        assert list(reservation.starts) == sorted(reservation.starts)
        assert all(start >= now for start in reservation.starts)
        starts.extend(reservation.starts)
        state = reservation.state
    allowed = burst + SECOND // limit.interval
    for first in starts:
        assert sum(1 for s in starts if first <= s <= first + SECOND) <= allowed


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimit(per_second=-1)
    with pytest.raises(ValueError):
        RateLimit(per_second=1, burst=0)
    with pytest.raises(ValueError):
        reserve(RateLimit(per_second=1), RateState(), START, count=0)


def test_a_rate_limit_is_bounded_and_the_error_names_the_field() -> None:
    assert validate_rate_limit(0) == 0  # no limit
    assert validate_rate_limit(MAX_RATE_LIMIT_PER_SECOND) == MAX_RATE_LIMIT_PER_SECOND
    for refused in (-1, MAX_RATE_LIMIT_PER_SECOND + 1, 2**31):
        with pytest.raises(InvalidArgument) as error:
            validate_rate_limit(refused, "subscription.rate_limit_per_second")
        assert error.value.field == "subscription.rate_limit_per_second"
        assert str(MAX_RATE_LIMIT_PER_SECOND) in error.value.description
