"""Prometheus metrics and structured logs (issue 8)."""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest

from tests.conftest import ServerFactory
from tests.support.factories import deliveries_of, publish, subscribe, wait_delivery
from tests.support.network import free_port
from tests.support.receiver import Receiver
from webhook_grpc._gen.webhooks.v1 import feed_pb2
from webhook_grpc.logs import JsonFormatter


async def scrape(port: int) -> str:
    url = f"http://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.text()


def value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not exported")


async def test_metrics_endpoint(make_server: ServerFactory, receiver: Receiver) -> None:
    port = free_port()
    server = await make_server(metrics_listen=f"127.0.0.1:{port}")
    before = await scrape(port)
    published_before = (
        value(before, 'webhook_events_published_total{type="product.created"}')
        if 'type="product.created"' in before
        else 0.0
    )
    await subscribe(server, receiver.url())
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    await wait_delivery(server, delivery.id)
    stream = server.feed.StreamEvents(feed_pb2.StreamEventsRequest(tenant_id="acme"))
    await stream.read()
    assert server.app.metrics_server is not None
    await server.app.metrics_server.refresh_queue_gauges()
    text = await scrape(port)
    assert (
        value(text, 'webhook_events_published_total{type="product.created"}')
        == published_before + 1
    )
    assert value(text, 'webhook_delivery_attempts_total{result="success"}') >= 1
    assert value(text, 'webhook_deliveries_finished_total{status="succeeded"}') >= 1
    assert value(text, "webhook_attempt_latency_seconds_count") >= 1
    assert value(text, "webhook_pending_deliveries") == 0
    assert value(text, "webhook_oldest_pending_age_seconds") == 0
    assert value(text, "webhook_feed_streams_open") >= 1
    assert (
        "webhook_subscriptions_auto_disabled_total" in text
        or "webhook_subscriptions_auto_disabled" in text
    )
    stream.cancel()


async def test_logs_are_json_with_ids_and_never_a_secret(
    make_server: ServerFactory, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await make_server(max_retry_attempts=1)
    receiver.on("/hook", statuses=[410])
    created = await subscribe(server, receiver.url())
    event = await publish(server, data={"id": "p1", "cost_price": "7.10", "name": "W"})
    [delivery] = await deliveries_of(server, event.id)
    await wait_delivery(server, delivery.id)
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    attempts = [json.loads(line) for line in lines if '"delivery attempt failed"' in line]
    assert attempts and attempts[0]["delivery_id"] == delivery.id
    assert attempts[0]["subscription_id"] == created.subscription.id
    disabled = [json.loads(line) for line in lines if "disabled automatically" in line]
    assert disabled and disabled[0]["reason"] == "endpoint_gone"
    everything = "\n".join(lines)
    assert created.secret not in everything
    assert created.secret.removeprefix("whsec_") not in everything
    assert "7.10" not in everything
