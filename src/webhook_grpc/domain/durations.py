"""Durations in settings: ``"500ms"``, ``"2s"``, ``"5m"``, ``"24h"``, ``"7d"`` or a bare number."""

from __future__ import annotations

import math
import re
from datetime import timedelta

UNITS: dict[str, timedelta] = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}

_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)?\s*")
# Display units, largest first; days are left out so that a day reads "24h".
_FORMAT_UNITS = (("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1_000))


def parse_duration(value: str | int | float, default_unit: str, field: str) -> timedelta:
    """Parse a non-negative duration; a bare number is in `default_unit`.

    Raises ValueError naming `field` and the bad value.
    """
    if default_unit not in UNITS:
        raise ValueError(f"unknown duration unit {default_unit!r}; use one of {', '.join(UNITS)}")
    problem = f"{field}: invalid duration {value!r}"
    hint = "expected a non-negative number with an optional unit ms, s, m, h or d, e.g. '500ms'"
    if isinstance(value, bool):
        raise ValueError(f"{problem}; {hint}")
    if isinstance(value, int | float):
        amount, unit = float(value), default_unit
    else:
        match = _DURATION_RE.fullmatch(value)
        if match is None:
            raise ValueError(f"{problem}; {hint}")
        amount, unit = float(match.group(1)), match.group(2) or default_unit
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"{problem}; {hint}")
    try:
        return UNITS[unit] * amount
    except OverflowError:
        raise ValueError(f"{problem}; it is too long") from None


def format_duration(td: timedelta) -> str:
    """Show a duration in the largest unit that holds it exactly: ``"500ms"``, ``"24h"``."""
    if td < timedelta(0):
        return "-" + format_duration(-td)
    micros = td // timedelta(microseconds=1)
    if micros == 0:
        return "0s"
    for unit, size in _FORMAT_UNITS:
        if micros % size == 0:
            return f"{micros // size}{unit}"
    whole, fraction = divmod(micros, 1000)
    return f"{whole}.{fraction:03d}".rstrip("0") + "ms"
