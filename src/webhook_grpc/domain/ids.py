"""Resource ids: a type prefix and a ULID, e.g. ``evt_01J9Z3…`` (SPEC §3).

Ids made later in this process sort after earlier ones, also within one millisecond and when the
wall clock steps back, so an id order is a creation order within a process.
"""

from __future__ import annotations

import os
import threading
import time

from ulid import ULID

_RANDOM_BITS = 80
_lock = threading.Lock()
_last = 0


def _next_ulid_value() -> int:
    global _last
    timestamp_ms = time.time_ns() // 1_000_000
    candidate = (timestamp_ms << _RANDOM_BITS) | int.from_bytes(os.urandom(_RANDOM_BITS // 8))
    with _lock:
        # Same millisecond with smaller randomness, or a clock that stepped back: step past the
        # last id instead (the monotonic-ULID rule, also robust to clock changes).
        if candidate <= _last:
            candidate = _last + 1
        _last = candidate
    return candidate


def new_id(prefix: str) -> str:
    """A new id ``<prefix>_<ULID>`` that sorts after every id this process made before."""
    if not prefix:
        raise ValueError("id prefix must not be empty")
    return f"{prefix}_{ULID.from_int(_next_ulid_value())}"
