"""The client's backoff policy: bounded, exponential, jittered."""

from __future__ import annotations

import random

import grpc
import pytest
from webhook_grpc_client import RetryPolicy
from webhook_grpc_client.retry import RETRYABLE


def test_delays_grow_exponentially_up_to_the_cap_with_full_jitter() -> None:
    policy = RetryPolicy(max_attempts=8, initial_delay=0.1, max_delay=1.0, multiplier=2.0)
    rng = random.Random(7)
    for failures, bound in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (7, 1.0)]:
        delays = [policy.delay(failures, rng) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8  # jitter spans the whole range
        assert min(delays) < bound * 0.2


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(initial_delay=-1)


def test_only_transient_codes_are_retried() -> None:
    assert {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED} == RETRYABLE
