"""`make bench`: run every scenario against PostgreSQL and print/write the figures.

Usage: python -m bench [--only name,name] [--duration SECONDS] [--smoke]

`--smoke` (`make bench-smoke`, in CI) runs every scenario for a moment on small backlogs and
checks only that each still produces its figures: no targets, and bench/results.json is left
alone."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from . import scenarios
from .harness import Cluster, fresh_database

RESULTS = Path(__file__).parent / "results.json"
TARGETS = {
    "publish_unary_ratio": (">=", 0.5),
    "publish_batch_eps": (">=", 10_000),
    "delivery_dps": (">=", 2_000),
    "delivery_ratio": (">=", 0.35),
    "latency_p50_ms": ("<=", 10),
    "latency_p99_ms": ("<=", 50),
    "feed_catchup_eps": (">=", 30_000),
    "feed_tail_p99_ms": ("<=", 50),
    "isolation_ratio": ("<=", 1.5),
    "dispatcher_rss_mb": ("<=", 300),
    "rest_publish_ratio": (">=", 0.8),
    "filter_overhead_ratio": (">=", 0.9),
    "sqlite_publish_p99_ms": ("<=", 100),
    "delivery_growth_ratio": (">=", 0.8),
    "publish_growth_ratio": (">=", 0.8),
    "purge_rows_per_s": (">=", 50_000),
    "purge_publish_p99_ratio": ("<=", 2),
    "publish_workers2_ratio": (">=", 0.5),
    "tenants_1000_latency_p99_ms": ("<=", 50),
    "idle_stream_kb": ("<=", 200),
}
SMOKE_DURATION = 0.5
SMOKE_SCALE = 0.05


def verdict(key: str, value: float) -> str:
    if key not in TARGETS:
        return ""
    op, target = TARGETS[key]
    ok = value >= target if op == ">=" else value <= target
    return f"{'met' if ok else 'MISSED'} ({op} {target:g})"


async def run(names: list[str]) -> dict[str, dict[str, float]]:
    """Each scenario's figures, by scenario name."""
    figures: dict[str, dict[str, float]] = {}
    with fresh_database() as database_url:
        cluster = Cluster(database_url)
        try:
            cluster.start_receiver()
            cluster.start_server(serve_dispatcher=False)
            for name in names:
                if name not in scenarios.LIVE_DISPATCHER:
                    cluster.stop_live_dispatcher()  # it would deliver this one's events
                began = time.perf_counter()
                result = await scenarios.SCENARIOS[name](cluster)
                figures[name] = result
                shown = ", ".join(f"{k}={v:,.2f}" for k, v in result.items())
                print(f"[{time.perf_counter() - began:5.1f}s] {name}: {shown}", flush=True)
        finally:
            cluster.close()
    return figures


def check_smoke(by_scenario: dict[str, dict[str, float]]) -> None:
    """Exit non-zero unless every scenario produced figures, each a finite number."""
    broken = [
        name
        for name, result in by_scenario.items()
        if not result or not all(math.isfinite(value) for value in result.values())
    ]
    if broken:
        raise SystemExit(f"bench smoke: no figures (or not numbers) from {', '.join(broken)}")
    print(f"\nbench smoke: all {len(by_scenario)} scenarios produced their figures")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--duration", type=float, default=scenarios.DURATION)
    parser.add_argument(
        "--smoke", action="store_true", help="every scenario briefly; check only that it runs"
    )
    args = parser.parse_args()
    scenarios.DURATION = SMOKE_DURATION if args.smoke else args.duration
    scenarios.SCALE = SMOKE_SCALE if args.smoke else 1.0
    names = [n for n in args.only.split(",") if n] or list(scenarios.SCENARIOS)
    by_scenario = asyncio.run(run(names))
    if args.smoke:
        check_smoke(by_scenario)
        return
    figures = {key: value for result in by_scenario.values() for key, value in result.items()}
    print()
    print(f"{'figure':34} {'value':>14}  target")
    for key, value in figures.items():
        print(f"{key:34} {value:14,.2f}  {verdict(key, value)}")
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous.update(figures)
    previous["_measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    previous["_machine"] = f"{platform.machine()}, {platform.python_version()}"
    RESULTS.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
