"""Prometheus metrics: what operators watch (issue 8). Served on `metrics_listen` when set."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

from webhook_grpc.domain.clock import Clock
from webhook_grpc.storage.ports import Storage

log = logging.getLogger(__name__)


class Metrics:
    """The service's metrics, on a registry of their own: the App creates one and hands it to the
    parts that record, so two Apps in one process (as in tests) count apart."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        # What the process exports besides (memory, CPU, file descriptors, GC, Python version).
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
        self.events_published = Counter(
            "webhook_events_published",
            "Events stored by PublishEvent(s) and SendTestEvent",
            ["type"],
            registry=registry,
        )
        self.attempts = Counter(
            "webhook_delivery_attempts",
            "HTTP delivery attempts by result: success or the error class",
            ["result"],
            registry=registry,
        )
        self.deliveries_finished = Counter(
            "webhook_deliveries_finished",
            "Deliveries that reached a final status",
            ["status"],
            registry=registry,
        )
        self.attempts_of_purged_deliveries = Counter(
            "webhook_attempts_of_purged_deliveries",
            "Attempts not recorded: retention purged their delivery while they were in flight",
            registry=registry,
        )
        self.attempt_latency = Histogram(
            "webhook_attempt_latency_seconds",
            "Duration of one HTTP delivery attempt",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.auto_disables = Counter(
            "webhook_subscriptions_auto_disabled",
            "Subscriptions disabled automatically",
            ["reason"],
            registry=registry,
        )
        self.pending = Gauge(
            "webhook_pending_deliveries", "Deliveries waiting for an attempt", registry=registry
        )
        self.oldest_pending_age = Gauge(
            "webhook_oldest_pending_age_seconds",
            "How overdue the most overdue pending delivery is",
            registry=registry,
        )
        self.feed_streams = Gauge(
            "webhook_feed_streams_open",
            "StreamEvents calls open on this process",
            registry=registry,
        )
        self.feed_stream_wakeups = Counter(
            "webhook_feed_stream_wakeups",
            "Times a waiting StreamEvents call was woken by a commit (not its poll); each costs a"
            " read",
            registry=registry,
        )


class MetricsServer:
    """The /metrics HTTP endpoint of `metrics`, and the queue gauges it reports."""

    def __init__(
        self, listen: str, metrics: Metrics, storage: Storage, clock: Clock, interval: float = 5.0
    ) -> None:
        host, _, port = listen.rpartition(":")
        self._address = (host.strip("[]"), int(port))
        self._metrics = metrics
        self._storage = storage
        self._clock = clock
        self._interval = interval
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> None:
        self._server, self._thread = start_http_server(
            self._address[1], addr=self._address[0], registry=self._metrics.registry
        )
        self.port = self._server.server_port
        log.info("metrics on http://%s:%d/metrics", self._address[0], self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    async def refresh_queue_gauges(self) -> None:
        async with self._storage.read() as unit:
            count, oldest = await unit.deliveries.pending_summary()
        self._metrics.pending.set(count)
        self._metrics.oldest_pending_age.set(_overdue_seconds(oldest, self._clock()))

    async def run(self) -> None:
        """Refresh the queue gauges every `interval` seconds, until cancelled."""
        while True:
            try:
                await self.refresh_queue_gauges()
            except Exception as error:
                log.warning("cannot refresh queue metrics: %s", error)
            await asyncio.sleep(self._interval)


def _overdue_seconds(oldest_due: datetime | None, now: datetime) -> float:
    return max(0.0, (now - oldest_due).total_seconds()) if oldest_due else 0.0
