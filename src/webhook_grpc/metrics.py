"""Prometheus metrics: what operators watch (issue 8). Served on `metrics_listen` when set."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from webhook_grpc.domain.clock import Clock
from webhook_grpc.storage.ports import Storage

log = logging.getLogger(__name__)

EVENTS_PUBLISHED = Counter(
    "webhook_events_published", "Events stored by PublishEvent(s) and SendTestEvent", ["type"]
)
ATTEMPTS = Counter(
    "webhook_delivery_attempts",
    "HTTP delivery attempts by result: success or the error class",
    ["result"],
)
DELIVERIES_FINISHED = Counter(
    "webhook_deliveries_finished", "Deliveries that reached a final status", ["status"]
)
ATTEMPT_LATENCY = Histogram(
    "webhook_attempt_latency_seconds",
    "Duration of one HTTP delivery attempt",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
AUTO_DISABLES = Counter(
    "webhook_subscriptions_auto_disabled", "Subscriptions disabled automatically", ["reason"]
)
PENDING = Gauge("webhook_pending_deliveries", "Deliveries waiting for an attempt")
OLDEST_PENDING_AGE = Gauge(
    "webhook_oldest_pending_age_seconds", "How overdue the most overdue pending delivery is"
)
FEED_STREAMS = Gauge("webhook_feed_streams_open", "StreamEvents calls open on this process")


class MetricsServer:
    """The /metrics HTTP endpoint and the queue gauges it reports."""

    def __init__(self, listen: str, storage: Storage, clock: Clock, interval: float = 5.0) -> None:
        host, _, port = listen.rpartition(":")
        self._address = (host.strip("[]"), int(port))
        self._storage = storage
        self._clock = clock
        self._interval = interval
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> None:
        self._server, self._thread = start_http_server(self._address[1], addr=self._address[0])
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
        PENDING.set(count)
        OLDEST_PENDING_AGE.set(_overdue_seconds(oldest, self._clock()))

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
