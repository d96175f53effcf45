from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook_grpc.domain.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("2s", timedelta(seconds=2)),
        ("5m", timedelta(minutes=5)),
        ("24h", timedelta(hours=24)),
        ("1.5h", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("0", timedelta(0)),
        (" 10 s ", timedelta(seconds=10)),
        (".5s", timedelta(milliseconds=500)),
        ("0.1s", timedelta(milliseconds=100)),
    ],
)
def test_parse_with_units(value: str, expected: timedelta) -> None:
    assert parse_duration(value, "m", "backoff_schedule") == expected


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("30", "s", timedelta(seconds=30)),
        ("30", "m", timedelta(minutes=30)),
        (24, "h", timedelta(hours=24)),
        (1.5, "m", timedelta(seconds=90)),
        (0, "ms", timedelta(0)),
        (250, "ms", timedelta(milliseconds=250)),
        ("2", "d", timedelta(days=2)),
    ],
)
def test_bare_numbers_use_the_default_unit(
    value: str | int | float, unit: str, expected: timedelta
) -> None:
    assert parse_duration(value, unit, "setting") == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "ms",
        "-1",
        "-5m",
        "5 minutes",
        "5M",
        "1e3",
        "1.s",
        "5m5s",
        "inf",
        "nan",
        "1,5h",
        "9" * 20 + "d",
        -1,
        -0.5,
        float("inf"),
        float("nan"),
        True,
    ],
)
def test_invalid_values_name_the_setting_and_value(value: str | int | float) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value, "s", "delivery_timeout")
    assert "delivery_timeout" in str(caught.value)
    assert repr(value) in str(caught.value)


def test_unknown_default_unit_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unit"):
        parse_duration("5", "w", "setting")


@pytest.mark.parametrize(
    ("td", "expected"),
    [
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(seconds=2), "2s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=24), "24h"),
        (timedelta(days=7), "168h"),
        (timedelta(seconds=90), "90s"),
        (timedelta(minutes=90), "90m"),
        (timedelta(milliseconds=1500), "1500ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(microseconds=1), "0.001ms"),
        (timedelta(0), "0s"),
        (timedelta(seconds=-2), "-2s"),
    ],
)
def test_format(td: timedelta, expected: str) -> None:
    assert format_duration(td) == expected


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)))
def test_format_then_parse_round_trips(td: timedelta) -> None:
    assert parse_duration(format_duration(td), "s", "setting") == td
