"""PostgreSQL only: delivery controls (SPEC §11) across two dispatcher processes, one of them
killed mid-run."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.factories import publish_in_feed_order, subscribe
from tests.support.processes import ServiceProcess, settings_env
from tests.support.receiver import Receiver
from tests.support.server import RunningServer
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb

from .test_fifo_rate_limit import (
    failing_randomly,
    first_successes,
    max_in_any_second,
    wait_successes,
)

pytestmark = pytest.mark.postgres


async def test_fifo_order_holds_across_two_dispatchers_and_a_kill(
    api_only: RunningServer, receiver: Receiver, postgres_url: str
) -> None:
    receiver.on("/fifo", statuses=failing_randomly(2000, 0.3, seed=500))
    await subscribe(api_only, receiver.url("/fifo"), ["product.*"], ordering=spb.ORDERING_FIFO)
    env = settings_env(
        postgres_url,
        backoff_schedule=["50ms"],
        max_retry_attempts=30,
        delivery_timeout="1s",
        lease_duration="2s",
        endpoint_concurrency=8,
    )
    workers = [ServiceProcess("dispatcher", env) for _ in range(2)]
    try:
        ids = await publish_in_feed_order(api_only, 200)
        await wait_successes(receiver, "/fifo", 60, timeout=60)
        workers[0].kill()  # SIGKILL, perhaps mid-attempt: its lease expires, the head goes again
        await wait_successes(receiver, "/fifo", len(ids), timeout=120)
    finally:
        for worker in workers:
            worker.close()
    assert first_successes(receiver, "/fifo") == ids
    assert sum(r.status == 500 for r in receiver.at("/fifo")) > 20


async def test_a_rate_limit_is_shared_by_two_dispatchers(
    api_only: RunningServer, receiver: Receiver, postgres_url: str
) -> None:
    await subscribe(api_only, receiver.url("/limited"), ["product.*"], rate_limit_per_second=20)
    await subscribe(api_only, receiver.url("/fast"), ["product.*"])
    workers = [ServiceProcess("dispatcher", settings_env(postgres_url)) for _ in range(2)]
    try:
        await asyncio.sleep(0)  # both start while the events are published
        await publish_in_feed_order(api_only, 80)
        await receiver.wait_count(80, "/fast", timeout=60)
        limited_when_fast_done = len(receiver.at("/limited"))
        await receiver.wait_count(80, "/limited", timeout=60)
    finally:
        for worker in workers:
            worker.close()
    times = [r.at for r in receiver.at("/limited")]
    assert max_in_any_second(times) <= 21  # 20 a second over both processes, and one burst
    assert times[-1] - times[0] >= 3.8  # 80 at 20 a second: about 4 s
    assert limited_when_fast_done < 60, "the unlimited endpoint was held back"
