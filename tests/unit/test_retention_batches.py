"""The purge sizes each batch to take about `batch_seconds`, within bounds."""

from __future__ import annotations

from webhook_grpc.services.retention import MAX_BATCH, MIN_BATCH, next_batch


def test_a_batch_that_took_too_long_shrinks_to_what_fits_the_budget() -> None:
    assert next_batch(1000, elapsed=0.4, budget=0.1) == 250
    assert next_batch(1000, elapsed=60.0, budget=0.1) == MIN_BATCH


def test_a_quick_batch_grows_at_most_twofold_up_to_the_bound() -> None:
    assert next_batch(1000, elapsed=0.08, budget=0.1) == 1250
    assert next_batch(1000, elapsed=0.001, budget=0.1) == 2000
    assert next_batch(MAX_BATCH, elapsed=0.0, budget=0.1) == MAX_BATCH
