"""What follows a commit is said by whoever writes, not remembered by whoever commits: the
recorder's transaction that disables a subscription wakes the tenant's feed streams because
publishing the `webhook.subscription_disabled` event in it registered the wake-up."""

from __future__ import annotations

import asyncio
import time

import grpc

from tests.conftest import ServerFactory
from tests.support.factories import publish, subscribe
from tests.support.receiver import Receiver
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb

HEARTBEAT = 3.0
# Far below the heartbeat (a wake-up takes milliseconds), and loose for a loaded machine.
WAKE_WITHIN = 1.5


async def _next_heartbeat(stream: grpc.aio.UnaryStreamCall) -> None:
    message = await asyncio.wait_for(stream.read(), HEARTBEAT * 3)
    assert message is not grpc.aio.EOF and not message.events


async def test_auto_disable_wakes_feed_streams_without_a_manual_wake(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    # Nothing polls within the test: only a wake-up, or the read after a heartbeat, streams.
    server = await make_server(poll_interval="30s", feed_heartbeat=f"{HEARTBEAT}s")
    answer = asyncio.Event()
    receiver.on("/hook", statuses=[410], hold=answer)
    await subscribe(server, receiver.url(), ["product.*"])
    await publish(server)
    await receiver.wait_count(1)  # the attempt is in flight, its answer held
    stream = server.feed.StreamEvents(
        fpb.StreamEventsRequest(tenant_id="acme", event_patterns=["webhook.subscription_disabled"])
    )
    # Two idle heartbeats: the stream has read and found nothing, and any wake-up of the
    # publish (and the quick re-reads one starts on PostgreSQL) is long past.
    await _next_heartbeat(stream)
    await _next_heartbeat(stream)
    answer.set()  # 410 Gone: the recorder disables the subscription as it records the attempt
    started = time.monotonic()
    message = await asyncio.wait_for(stream.read(), HEARTBEAT * 3)
    elapsed = time.monotonic() - started
    assert message is not grpc.aio.EOF
    assert [e.type for e in message.events] == ["webhook.subscription_disabled"]
    assert elapsed < WAKE_WITHIN, f"streamed after {elapsed:.2f}s: not woken by the commit"
    stream.cancel()
