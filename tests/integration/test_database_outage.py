"""The database goes away and comes back (PostgreSQL behind a fault proxy; SPEC §3 Errors, §4
Durability).

While it is away, RPCs answer UNAVAILABLE quickly (never INTERNAL, never a hang), open feed
streams end with UNAVAILABLE, and the dispatcher backs off instead of spinning or dying. When it
is back, the service resumes by itself: RPCs work, pending deliveries are delivered, and nothing
acknowledged before the outage is lost. The shared PostgreSQL server itself is never stopped."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from tests.support.factories import publish, publish_request, subscribe
from tests.support.fault_proxy import FaultProxy, Outage
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, start_server
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb
from webhook_grpc.storage.postgresql import CONNECT_TIMEOUT, POOL_TIMEOUT

pytestmark = pytest.mark.postgres

# How fast an RPC must give up while the database is away (the client retries UNAVAILABLE): in
# the documented worst case (a new connection's timeout, then the wait for a pooled one), with
# room for a loaded machine. A call that hangs instead runs into its outer deadline, well beyond.
WORST_CASE = CONNECT_TIMEOUT + POOL_TIMEOUT
ANSWER_WITHIN = 2 * WORST_CASE
CALL_DEADLINE = 4 * WORST_CASE
EVENTS_BEFORE = 20
RECOVERY_WITHIN = 30.0


@pytest.fixture
async def server(postgres_url: str, proxy: FaultProxy) -> AsyncIterator[RunningServer]:
    # Attempts held unanswered until the outage (see below) must not use up their retries first.
    running = await start_server(proxy.url(postgres_url), delivery_timeout="5s")
    yield running
    await proxy.restore()  # so that stopping can release what it holds
    await running.stop()


async def answer(call: Awaitable[Any]) -> tuple[grpc.StatusCode, float]:
    started = time.monotonic()
    try:
        await call
        code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as error:
        code = error.code()
    return code, time.monotonic() - started


async def first_message(server: RunningServer, request: fpb.StreamEventsRequest) -> Any:
    stream = server.feed.StreamEvents(request, timeout=CALL_DEADLINE)
    try:
        async for message in stream:
            return message
    finally:
        stream.cancel()


def calls_during_outage(server: RunningServer, subscription_id: str) -> dict[str, Any]:
    """One call of each kind a client makes, each building a fresh awaitable."""
    t = CALL_DEADLINE
    return {
        "PublishEvent": lambda: server.events.PublishEvent(
            publish_request(entity_id="during"), timeout=t
        ),
        "ListEvents": lambda: server.feed.ListEvents(
            fpb.ListEventsRequest(tenant_id="acme"), timeout=t
        ),
        "StreamEvents": lambda: first_message(
            server, fpb.StreamEventsRequest(tenant_id="acme", from_latest=True)
        ),
        "GetSubscription": lambda: server.subscriptions.GetSubscription(
            spb.GetSubscriptionRequest(id=subscription_id), timeout=t
        ),
        "CreateSubscription": lambda: server.subscriptions.CreateSubscription(
            spb.CreateSubscriptionRequest(
                tenant_id="acme", url="http://127.0.0.1:9/x", event_patterns=["*"]
            ),
            timeout=t,
        ),
        "ListDeliveries": lambda: server.deliveries.ListDeliveries(
            dpb.ListDeliveriesRequest(tenant_id="acme"), timeout=t
        ),
    }


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> float:
    """Wait until `check()` holds (exceptions count as not yet); returns how long it took."""
    started = time.monotonic()
    while True:
        try:
            if await check():
                return time.monotonic() - started
        except grpc.aio.AioRpcError:
            pass
        assert time.monotonic() - started < RECOVERY_WITHIN, f"{what} within {RECOVERY_WITHIN}s"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("outage", [Outage.REFUSE, Outage.BLACKHOLE], ids=lambda o: o.value)
async def test_service_answers_unavailable_then_resumes_by_itself(
    server: RunningServer,
    proxy: FaultProxy,
    receiver: Receiver,
    outage: Outage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    # No answers until the database goes away, so that attempts are in flight then, and others
    # still pending (beyond endpoint_concurrency), however slow the machine.
    hold = asyncio.Event()
    receiver.on("/hook", hold=hold)
    subscription = await subscribe(server, receiver.url("/hook"), ["product.*"])
    acknowledged = [
        (await publish(server, entity_id=f"before_{i}")).id for i in range(EVENTS_BEFORE)
    ]
    live = server.feed.StreamEvents(fpb.StreamEventsRequest(tenant_id="acme"), timeout=120)
    backlog = await live.read()
    assert backlog.events

    await proxy.cut(outage)
    cut_at = time.monotonic()
    assert receiver.unanswered, "no attempt was in flight"
    hold.set()  # those attempts finish during the outage

    # A stream that was open when the database went away ends, and says why.
    code, _ = await answer(asyncio.wait_for(_drain(live), CALL_DEADLINE))
    assert code is grpc.StatusCode.UNAVAILABLE

    calls = calls_during_outage(server, subscription.subscription.id)
    answers = await asyncio.gather(*(answer(make()) for make in calls.values()))
    slow = []
    for name, (code, took) in zip(calls, answers, strict=True):
        assert code is grpc.StatusCode.UNAVAILABLE, f"{name} during the outage: {code}"
        if took >= ANSWER_WITHIN:
            slow.append(f"{name} took {took:.1f}s")
    # Many callers at once: waiting for the connection pool must not hang or turn INTERNAL.
    burst = await asyncio.gather(
        *(
            answer(server.feed.ListEvents(fpb.ListEventsRequest(tenant_id="acme"), timeout=60))
            for _ in range(40)
        )
    )
    codes = {code for code, _ in burst}
    assert codes == {grpc.StatusCode.UNAVAILABLE}, codes
    slow += [f"burst call took {took:.1f}s" for _, took in burst if took >= ANSWER_WITHIN]
    assert not slow, slow

    await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - cut_at)))  # an outage of 3 s at least
    down_for = time.monotonic() - cut_at
    lease_failures = [r for r in caplog.records if "dispatcher cannot lease" in r.getMessage()]
    # Backing off, not spinning. (Its 0.05 s-doubling-to-5 s delay is cut short by wake-ups,
    # e.g. from attempts that finish during the outage, so a few more than that schedule.)
    assert len(lease_failures) <= 10 * down_for, len(lease_failures)

    await proxy.restore()
    await eventually(
        lambda: _ok(server.feed.ListEvents(fpb.ListEventsRequest(tenant_id="acme"), timeout=5)),
        "RPCs work again",
    )

    async def all_acknowledged_in_feed() -> bool:
        page = await server.feed.ListEvents(
            fpb.ListEventsRequest(tenant_id="acme", page_size=1000), timeout=5
        )
        return set(acknowledged) <= {event.id for event in page.events}

    await eventually(all_acknowledged_in_feed, "every acknowledged event in the feed")

    async def all_delivered() -> bool:
        listed = await server.deliveries.ListDeliveries(
            dpb.ListDeliveriesRequest(
                tenant_id="acme", subscription_id=subscription.subscription.id, page_size=100
            ),
            timeout=5,
        )
        by_event = {d.event_id: d.status for d in listed.deliveries}
        return all(by_event.get(e) == dpb.DELIVERY_STATUS_SUCCEEDED for e in acknowledged)

    await eventually(all_delivered, "every delivery succeeded")
    received = {r.headers.get("webhook-id") for r in receiver.at("/hook")}
    assert set(acknowledged) <= received

    # And new work flows as before: the dispatcher survived the outage.
    after = await publish(server, entity_id="after")
    await receiver.wait_for(
        lambda got: any(r.headers.get("webhook-id") == after.id for r in got), timeout=15
    )


async def _drain(stream: Any) -> None:
    while await stream.read() is not grpc.aio.EOF:
        pass


async def _ok(call: Awaitable[Any]) -> bool:
    await call
    return True
