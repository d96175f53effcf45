from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook_grpc.domain.retry import (
    RetryPolicy,
    delay_after_failure,
    first_delay,
    next_attempt_after_failure,
    parse_retry_after,
)

MIN = timedelta(minutes=1)
DEFAULT = RetryPolicy(schedule=(0 * MIN, 1 * MIN, 5 * MIN, 30 * MIN, 120 * MIN), max_attempts=5)
NOW = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)


def test_first_attempt_is_immediate() -> None:
    assert first_delay(DEFAULT) == timedelta(0)


@pytest.mark.parametrize(
    ("attempts_made", "expected"),
    [(1, 1 * MIN), (2, 5 * MIN), (3, 30 * MIN), (4, 120 * MIN)],
)
def test_schedule_gives_the_delay_before_the_next_attempt(
    attempts_made: int, expected: timedelta
) -> None:
    assert delay_after_failure(DEFAULT, attempts_made, None) == expected


@pytest.mark.parametrize("attempts_made", [5, 6, 100])
def test_gives_up_after_max_attempts(attempts_made: int) -> None:
    assert delay_after_failure(DEFAULT, attempts_made, None) is None
    assert delay_after_failure(DEFAULT, attempts_made, timedelta(seconds=1)) is None


def test_short_schedule_reuses_its_last_step() -> None:
    policy = RetryPolicy(schedule=(timedelta(0), 2 * MIN), max_attempts=5)
    assert [delay_after_failure(policy, n, None) for n in range(1, 6)] == [
        2 * MIN,
        2 * MIN,
        2 * MIN,
        2 * MIN,
        None,
    ]


def test_single_attempt_policy_never_retries() -> None:
    policy = RetryPolicy(schedule=(timedelta(0),), max_attempts=1)
    assert delay_after_failure(policy, 1, 10 * MIN) is None


def test_longer_retry_after_replaces_the_step() -> None:
    assert delay_after_failure(DEFAULT, 1, 3 * MIN) == 3 * MIN


def test_shorter_retry_after_does_not_shorten_the_step() -> None:
    assert delay_after_failure(DEFAULT, 2, 1 * MIN) == 5 * MIN
    assert delay_after_failure(DEFAULT, 2, timedelta(0)) == 5 * MIN


def test_retry_after_is_capped_at_the_longest_step() -> None:
    assert delay_after_failure(DEFAULT, 1, timedelta(days=3)) == 120 * MIN
    assert delay_after_failure(DEFAULT, 1, timedelta.max) == 120 * MIN


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(schedule=(), max_attempts=5)
    with pytest.raises(ValueError):
        RetryPolicy(schedule=(timedelta(seconds=-1),), max_attempts=5)
    with pytest.raises(ValueError):
        RetryPolicy(schedule=(timedelta(0),), max_attempts=0)
    with pytest.raises(ValueError):
        delay_after_failure(DEFAULT, -1, None)


@given(
    schedule=st.lists(
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1)), min_size=1
    ),
    max_attempts=st.integers(1, 20),
    attempts_made=st.integers(0, 25),
    retry_after=st.none() | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)),
)
def test_delay_is_within_the_schedule(
    schedule: list[timedelta],
    max_attempts: int,
    attempts_made: int,
    retry_after: timedelta | None,
) -> None:
    policy = RetryPolicy(schedule=tuple(schedule), max_attempts=max_attempts)
    delay = delay_after_failure(policy, attempts_made, retry_after)
    if attempts_made >= max_attempts:
        assert delay is None
        return
    assert delay is not None
    step = schedule[min(attempts_made, len(schedule) - 1)]
    assert step <= delay <= max(step, max(schedule))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", timedelta(seconds=120)), (" 0 ", timedelta(0)), ("3600", timedelta(hours=1))],
)
def test_parse_delta_seconds(value: str, expected: timedelta) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_huge_delta_seconds_does_not_overflow() -> None:
    assert parse_retry_after("9" * 30, NOW) == timedelta.max


def test_parse_http_date() -> None:
    assert parse_retry_after("Sat, 28 Nov 2026 10:02:00 GMT", NOW) == timedelta(minutes=2)
    later = NOW + timedelta(seconds=90)
    assert parse_retry_after(format_datetime(later, usegmt=True), NOW) == timedelta(seconds=90)


def test_parse_http_date_with_offset_and_naive_now() -> None:
    value = format_datetime(NOW.astimezone(timezone(timedelta(hours=2))) + timedelta(minutes=1))
    assert parse_retry_after(value, NOW) == timedelta(minutes=1)
    assert parse_retry_after("Sat, 28 Nov 2026 10:01:00 -0000", NOW.replace(tzinfo=None)) == MIN


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "-5",
        "1.5",
        "soon",
        "²",
        "Sat, 28 Nov 2026 09:59:00 GMT",  # in the past
        "Sat, 99 Nov 2026 10:00:00 GMT",
        "Mon, 32 Foo",
    ],
)
def test_parse_garbage_or_past_gives_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@given(st.text(max_size=40))
def test_parse_never_raises(value: str) -> None:
    result = parse_retry_after(value, NOW)
    assert result is None or result >= timedelta(0)


def test_next_attempt_follows_the_schedule() -> None:
    assert next_attempt_after_failure(DEFAULT, 1, 500, None, NOW) == NOW + MIN
    assert next_attempt_after_failure(DEFAULT, 3, None, None, NOW) == NOW + 30 * MIN
    assert next_attempt_after_failure(DEFAULT, 5, 500, None, NOW) is None


@pytest.mark.parametrize("status", [429, 503])
def test_next_attempt_honours_retry_after_on_429_and_503(status: int) -> None:
    assert next_attempt_after_failure(DEFAULT, 1, status, "600", NOW) == NOW + 10 * MIN
    assert next_attempt_after_failure(DEFAULT, 1, status, "86400", NOW) == NOW + 120 * MIN
    assert next_attempt_after_failure(DEFAULT, 1, status, "garbage", NOW) == NOW + MIN


@pytest.mark.parametrize("status", [None, 200, 302, 500, 502])
def test_next_attempt_ignores_retry_after_on_other_statuses(status: int | None) -> None:
    assert next_attempt_after_failure(DEFAULT, 1, status, "600", NOW) == NOW + MIN


def test_gone_stops_at_once() -> None:
    assert next_attempt_after_failure(DEFAULT, 1, 410, None, NOW) is None
    assert next_attempt_after_failure(DEFAULT, 1, 410, "5", NOW) is None
