"""Metrics and logs as operators see them: what the metrics endpoint says changed after one
delivery outcome (parsed as Prometheus text), and what a real `webhook-grpc serve` process
writes, through its own logging set-up."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import aiohttp
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerFactory
from tests.support.factories import (
    deliveries_of,
    publish,
    publish_request,
    subscribe,
    wait_delivery,
)
from tests.support.processes import LoggingProcess, settings_env
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, token_hash
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import (
    deliveries_pb2_grpc,
    events_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(server: RunningServer) -> Samples:
    assert server.app.metrics_server is not None
    url = f"http://127.0.0.1:{server.app.metrics_server.port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def deliver_one(server: RunningServer, url: str) -> dpb.Delivery:
    await subscribe(server, url)
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    done: dpb.Delivery = await wait_delivery(server, delivery.id, timeout=30)
    return done


async def test_a_410_moves_the_outcome_and_auto_disable_counters(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(metrics_listen="127.0.0.1:0")
    receiver.on("/gone", statuses=[410])
    before = await scrape(server)
    done = await deliver_one(server, receiver.url("/gone"))
    after = await scrape(server)

    assert done.status == dpb.DELIVERY_STATUS_FAILED
    assert delta(before, after, "webhook_events_published_total", type="product.created") == 1
    assert delta(before, after, "webhook_delivery_attempts_total", result="http_status") == 1
    assert delta(before, after, "webhook_delivery_attempts_total", result="success") == 0
    assert delta(before, after, "webhook_deliveries_finished_total", status="failed") == 1
    assert delta(before, after, "webhook_deliveries_finished_total", status="succeeded") == 0
    auto_disabled = "webhook_subscriptions_auto_disabled_total"
    assert delta(before, after, auto_disabled, reason="endpoint_gone") == 1
    assert delta(before, after, auto_disabled, reason="failure_rate") == 0
    assert delta(before, after, "webhook_attempt_latency_seconds_count") == 1


async def test_two_apps_in_one_process_count_apart(make_server: ServerFactory) -> None:
    # Each App records on a registry of its own, and its /metrics serves that one.
    first = await make_server(metrics_listen="127.0.0.1:0")
    second = await make_server(metrics_listen="127.0.0.1:0")
    before = await scrape(second)
    await publish(first)
    published = "webhook_events_published_total"
    assert delta({}, await scrape(first), published, type="product.created") == 1
    assert delta(before, await scrape(second), published, type="product.created") == 0
    # Each registry also carries the process's own metrics (docs/OPERATIONS.md).
    assert ("process_resident_memory_bytes", ()) in before


async def test_a_timeout_moves_the_latency_histogram_and_the_failure_counter(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(
        metrics_listen="127.0.0.1:0", delivery_timeout="300ms", max_retry_attempts=1
    )
    receiver.on("/slow", delay=60)
    before = await scrape(server)
    done = await deliver_one(server, receiver.url("/slow"))
    after = await scrape(server)

    assert done.attempts[0].error == dpb.ATTEMPT_ERROR_TIMEOUT
    assert delta(before, after, "webhook_delivery_attempts_total", result="timeout") == 1
    assert delta(before, after, "webhook_delivery_attempts_total", result="success") == 0
    assert delta(before, after, "webhook_deliveries_finished_total", status="failed") == 1
    latency = "webhook_attempt_latency_seconds"
    assert delta(before, after, f"{latency}_count") == 1
    assert delta(before, after, f"{latency}_sum") >= 0.3
    # It waited the whole timeout: not in a bucket below it, in every bucket from 0.5 s on
    # (however loaded the machine, it did not take 10 s).
    assert delta(before, after, f"{latency}_bucket", le="0.25") == 0
    assert delta(before, after, f"{latency}_bucket", le="10.0") == 1
    assert delta(before, after, f"{latency}_bucket", le="+Inf") == 1


# The real process: `serve` configures logging itself (format, level, secret guard).

TOKEN = "tok-admin-5c1e7d0b9a2f4e68"
CONFIDENTIAL = "cost-7919.1357"
CONSOLE_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR)\s+\S+: ")
# The HTTP/2 connection preface, an empty SETTINGS frame, and GOAWAY with PROTOCOL_ERROR: what
# a client that gives up on a connection sends (the TypeScript client does on close). gRPC's C
# core logs it at INFO, straight to stderr ("I1129 … chttp2_transport.cc … Got goaway").
GOAWAY = (
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    + b"\x00\x00\x08\x07\x00\x00\x00\x00\x00"
    + b"\x00\x00\x00\x00\x00\x00\x00\x02"
)


async def send_goaway(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(GOAWAY)
    await writer.drain()
    await reader.readexactly(9)  # the server's SETTINGS frame header: it has read ours
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("log_format", ["json", "console", None])
async def test_serve_logs_in_its_format_and_never_a_secret(
    tmp_path: Path, receiver: Receiver, log_format: str | None
) -> None:
    config = tmp_path / "webhook-grpc.toml"
    config.write_text(f'[[tokens]]\nrole = "admin"\nsha256 = "{token_hash(TOKEN)}"\n')
    env = settings_env(
        f"sqlite:///{tmp_path / 'serve.db'}",
        listen="127.0.0.1:0",
        log_level="DEBUG",
        config=str(config),
    )
    # The operator's environment decides nothing here: the defaults must keep stderr clean.
    for name in ("GRPC_VERBOSITY", "GRPC_TRACE", "WEBHOOK_GRPC_LOG_FORMAT"):
        env.pop(name, None)
    if log_format is not None:  # None: the default, auto, which is JSON on a pipe
        env["WEBHOOK_GRPC_LOG_FORMAT"] = log_format
    receiver.on("/gone", statuses=[410])
    service = await LoggingProcess.start("serve", env)
    auth = (("authorization", f"Bearer {TOKEN}"),)
    try:
        port = await service.port()
        await send_goaway(port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            created = await subscriptions_pb2_grpc.SubscriptionServiceStub(
                channel
            ).CreateSubscription(
                subscriptions_pb2.CreateSubscriptionRequest(
                    tenant_id="acme", url=receiver.url("/gone"), event_patterns=["product.*"]
                ),
                metadata=auth,
            )
            request = publish_request(data={"id": "p1", "name": "W", "cost_price": CONFIDENTIAL})
            published = await events_pb2_grpc.EventServiceStub(channel).PublishEvent(
                request, metadata=auth
            )
            deliveries = deliveries_pb2_grpc.DeliveryServiceStub(channel)
            listed = await deliveries.ListDeliveries(
                dpb.ListDeliveriesRequest(tenant_id="acme", event_id=published.event.id),
                metadata=auth,
            )
            [delivery] = listed.deliveries
            await receiver.wait_count(1, "/gone", timeout=30)
            while delivery.status == dpb.DELIVERY_STATUS_PENDING:
                await asyncio.sleep(0.05)
                answer = await deliveries.GetDelivery(
                    dpb.GetDeliveryRequest(id=delivery.id), metadata=auth
                )
                delivery = answer.delivery
        assert await service.terminate() == 0
    finally:
        await service.close()

    lines = service.stderr + service.stdout
    everything = "\n".join(lines)
    for secret in (TOKEN, created.secret, created.secret.removeprefix("whsec_"), CONFIDENTIAL):
        assert secret not in everything
    assert "Loaded running loop" not in everything and "Using selector" not in everything
    if log_format == "console":
        assert all(CONSOLE_LINE.match(line) for line in lines), everything
        [attempt_line] = [line for line in lines if ": delivery attempt failed " in line]
        assert " WARNING " in attempt_line
        for field in (f"delivery_id={delivery.id}", "status_code=410", 'error="HTTP 410"'):
            assert field in attempt_line, attempt_line
        [disabled_line] = [line for line in lines if "disabled automatically" in line]
        assert f"subscription_id={created.subscription.id}" in disabled_line
        assert any(line.startswith(tuple("0123456789")) for line in lines)
        return

    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    for entry in entries:
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= set(entry)
    assert any(e["logger"].startswith("alembic") for e in entries)  # libraries' lines too
    [attempt] = [e for e in entries if e["message"] == "delivery attempt failed"]
    assert attempt["level"] == "warning"
    assert attempt["error"] == "HTTP 410"
    assert attempt["delivery_id"] == delivery.id
    assert attempt["event_id"] == published.event.id
    assert attempt["subscription_id"] == created.subscription.id
    assert attempt["attempt"] == 1
    assert attempt["result"] == "http_status" and attempt["status_code"] == 410
    assert attempt["delivery_status"] == "failed"
    assert isinstance(attempt["latency_ms"], float | int)
    [disabled] = [e for e in entries if e["message"] == "subscription disabled automatically"]
    assert disabled["level"] == "warning"
    assert disabled["reason"] == "endpoint_gone"
    assert disabled["subscription_id"] == created.subscription.id
    assert disabled["tenant_id"] == "acme"
    assert next(e for e in entries if "listening on" in e["message"])["level"] == "info"
