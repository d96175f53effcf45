"""When to retry a call, and how long to wait before the next attempt."""

from __future__ import annotations

import random
from dataclasses import dataclass

import grpc

# The server answers UNAVAILABLE when it (or its database) is down; a connection that cannot be
# made is UNAVAILABLE too. DEADLINE_EXCEEDED may hide a commit that happened: retrying is safe only
# because publishing carries an idempotency key.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

_JITTER = random.Random()


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by a number of attempts.

    Attempt 1 runs at once; before attempt n + 1 the client waits a random time between 0 and
    ``min(max_delay, initial_delay * multiplier ** (n - 1))`` seconds.

    Attributes:
        max_attempts: attempts in total, the first included (at least 1).
        initial_delay: the upper bound of the first wait, in seconds.
        max_delay: the largest upper bound of a wait, in seconds.
        multiplier: how much the bound grows after each failed attempt.
    """

    max_attempts: int = 5
    initial_delay: float = 0.1
    max_delay: float = 5.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must not be negative and multiplier must be at least 1")

    def delay(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after `failed_attempts` consecutive failures (1 or more)."""
        bound = min(self.max_delay, self.initial_delay * self.multiplier ** (failed_attempts - 1))
        return (rng if rng is not None else _JITTER).uniform(0, bound)


def is_retryable(error: grpc.RpcError) -> bool:
    """True when `error` is a transient failure worth another attempt."""
    code = error.code() if callable(getattr(error, "code", None)) else None
    return code in RETRYABLE
