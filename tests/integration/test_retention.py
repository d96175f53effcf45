"""Retention as a running server does it: the scheduled purge, on its own, with everything that
hangs off a purged event (its deliveries and their attempts) gone too, and recent data kept."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import sqlalchemy as sa

from tests.conftest import ServerFactory
from tests.support.clock import MovableClock
from tests.support.factories import deliveries_of, publish, subscribe, wait_delivery
from tests.support.receiver import Receiver
from tests.support.rpc import rpc_error
from tests.support.server import RunningServer
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb
from webhook_grpc.storage.urls import sync_url


async def feed_ids(server: RunningServer) -> list[str]:
    page = await server.feed.ListEvents(fpb.ListEventsRequest(tenant_id="acme", page_size=1000))
    return [e.id for e in page.events]


async def attempted(server: RunningServer, event_id: str) -> list[dpb.Delivery]:
    """The event's deliveries, once each has been attempted (and the attempt recorded)."""
    return [
        await wait_delivery(server, d.id, lambda d: d.attempt_count >= 1)
        for d in await deliveries_of(server, event_id)
    ]


async def test_the_scheduled_purge_takes_old_events_with_their_deliveries_and_attempts(
    make_server: ServerFactory, receiver: Receiver, database_url: str
) -> None:
    clock = MovableClock(datetime.now(UTC) - timedelta(days=40))
    server = await make_server(
        clock=clock,
        retention_days=30,
        retention_interval="100ms",
        # The failing endpoint's retry is not due for 100 days, even after the clock moves 40:
        # its delivery stays pending with one recorded attempt.
        backoff_schedule=["0ms", "2400h"],
    )
    receiver.on("/failing", statuses=[500])
    await subscribe(server, receiver.url("/ok"))
    await subscribe(server, receiver.url("/failing"))
    old = [await publish(server, entity_id=f"old{i}") for i in range(2)]
    old_deliveries = [d for event in old for d in await attempted(server, event.id)]
    assert {d.status for d in old_deliveries} == {
        dpb.DELIVERY_STATUS_SUCCEEDED,
        dpb.DELIVERY_STATUS_PENDING,
    }

    clock.now = datetime.now(UTC)
    recent = await publish(server, entity_id="recent")
    recent_deliveries = await attempted(server, recent.id)
    deadline = asyncio.get_running_loop().time() + 30
    while await feed_ids(server) != [recent.id]:  # nobody calls purge(): the loop does
        assert asyncio.get_running_loop().time() < deadline, await feed_ids(server)
        await asyncio.sleep(0.05)

    for delivery in old_deliveries:
        await rpc_error(
            server.deliveries.GetDelivery(dpb.GetDeliveryRequest(id=delivery.id)),
            grpc.StatusCode.NOT_FOUND,
        )
    for event in old:
        assert await deliveries_of(server, event.id) == []
    await rpc_error(
        server.feed.ListEvents(fpb.ListEventsRequest(tenant_id="acme", after_cursor=old[0].cursor)),
        grpc.StatusCode.OUT_OF_RANGE,
    )
    listed = await server.deliveries.ListDeliveries(dpb.ListDeliveriesRequest(tenant_id="acme"))
    assert {d.id for d in listed.deliveries} == {d.id for d in recent_deliveries}
    for delivery in recent_deliveries:
        kept = await server.deliveries.GetDelivery(dpb.GetDeliveryRequest(id=delivery.id))
        assert len(kept.delivery.attempts) == delivery.attempt_count >= 1
    # No attempt outlives its delivery (the API cannot show an orphan, so look at the table).
    engine = sa.create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            attempts = conn.execute(sa.text("SELECT count(*) FROM attempts")).scalar_one()
    finally:
        engine.dispose()
    assert attempts == sum(d.attempt_count for d in recent_deliveries)


async def test_an_attempt_whose_delivery_was_purged_in_flight_is_counted_the_rest_recorded(
    make_server: ServerFactory,
    receiver: Receiver,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The purge leaves events whose deliveries are leased, but one that leases after the purge
    chose its batch loses the race (or an operator deletes rows): the attempt comes back to a
    delivery that is gone. Counted, not an error, and the other attempts of its batch are
    recorded, not dropped with it to be sent again."""
    server = await make_server()
    answer = asyncio.Event()
    receiver.on("/held", hold=answer)
    await subscribe(server, receiver.url("/held"))
    purged, kept = [await publish(server, entity_id=f"p{i}") for i in range(2)]
    await receiver.wait_count(2)  # both attempts in flight, their answers held
    [kept_delivery] = await deliveries_of(server, kept.id)
    engine = sa.create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            for table, column in (("deliveries", "event_id"), ("events", "id")):
                conn.execute(
                    sa.text(f"DELETE FROM {table} WHERE {column} = :id"), {"id": purged.id}
                )
    finally:
        engine.dispose()
    answer.set()

    recorded = await wait_delivery(server, kept_delivery.id)
    assert (recorded.status, recorded.attempt_count) == (dpb.DELIVERY_STATUS_SUCCEEDED, 1)
    registry = server.app.metrics.registry
    deadline = asyncio.get_running_loop().time() + 10
    while registry.get_sample_value("webhook_attempts_of_purged_deliveries_total") != 1:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
