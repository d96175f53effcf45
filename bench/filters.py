"""Micro-benchmark of subscription filters: compile once, evaluate many (docs/CEL_FILTERS.md).

Usage: python -m bench.filters [--runs N]

Prints µs per compile and per evaluation of the SPEC §11 example on a typical projected
`product.price_changed` event, with the event converted for each evaluation (one subscription
with a filter) and converted once for many filters (`FilterInput`, several subscriptions).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.sample_event import CONFIDENTIAL, PREVIOUS, PRODUCT, SPEC_EXAMPLE
from webhook_grpc.domain.builtin_types import BUILTIN_SCHEMAS
from webhook_grpc.domain.filters import FilterInput, compile_filter
from webhook_grpc.domain.models import Event
from webhook_grpc.domain.projection import project_event

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
EVENT = Event(
    "evt_1",
    "acme",
    "product.price_changed",
    "prod_1",
    PRODUCT | CONFIDENTIAL,
    PREVIOUS | {"cost_price": "70.00"},
    NOW,
    NOW,
)


def micros(runs: int, call: Callable[[], object]) -> float:
    call()
    started = time.perf_counter()
    for _ in range(runs):
        call()
    return (time.perf_counter() - started) / runs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.filters")
    parser.add_argument("--runs", type=int, default=50_000)
    runs = parser.parse_args().runs
    projected = project_event(EVENT, BUILTIN_SCHEMAS["product"])
    spec = compile_filter(SPEC_EXAMPLE)
    prepared = FilterInput(projected)
    assert spec.matches(projected)
    figures = {
        "filter_compile_us": micros(200, lambda: compile_filter.__wrapped__(SPEC_EXAMPLE)),
        "filter_eval_us": micros(runs, lambda: spec.matches(projected)),
        "filter_eval_prepared_us": micros(runs, lambda: spec.matches(prepared)),
        "filter_input_us": micros(runs, lambda: FilterInput(projected)),
        "projection_us": micros(runs, lambda: project_event(EVENT, BUILTIN_SCHEMAS["product"])),
    }
    for key, value in figures.items():
        print(f"{key:26} {value:10.2f}")


if __name__ == "__main__":
    main()
