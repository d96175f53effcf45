"""Delivery controls end to end (SPEC §11), on SQLite and PostgreSQL: a FIFO subscription
receives in feed order through failures and retries; a rate-limited one at most its budget
per second while an unlimited endpoint beside it runs at full speed."""

from __future__ import annotations

import random

from tests.conftest import ServerFactory
from tests.support.factories import publish_in_feed_order, subscribe
from tests.support.receiver import Receiver
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb

# Retries enough that a delivery failing 30 % of the time never finally fails.
PATIENT = {"backoff_schedule": ["50ms"], "max_retry_attempts": 30}


def failing_randomly(count: int, rate: float, seed: int) -> list[int]:
    """Statuses for `count` requests, `rate` of them 500, the same on every run."""
    rng = random.Random(seed)
    return [500 if rng.random() < rate else 200 for _ in range(count)] + [200]


def first_successes(receiver: Receiver, path: str) -> list[str]:
    """Event ids in the order of their first successful receipt at `path`."""
    seen: dict[str, None] = {}
    for received in receiver.at(path):
        if received.status == 200:
            seen.setdefault(received.headers["webhook-id"], None)
    return list(seen)


def max_in_any_second(times: list[float]) -> int:
    return max(sum(1 for other in times if start <= other < start + 1.0) for start in times)


async def wait_successes(receiver: Receiver, path: str, count: int, timeout: float) -> None:
    await receiver.wait_for(lambda _: len(first_successes(receiver, path)) >= count, timeout)


async def test_a_fifo_subscription_receives_in_feed_order_through_random_failures(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server(**PATIENT, endpoint_concurrency=8)
    receiver.on("/fifo", statuses=failing_randomly(1000, 0.3, seed=17))
    await subscribe(server, receiver.url("/fifo"), ["product.*"], ordering=spb.ORDERING_FIFO)
    ids = await publish_in_feed_order(server, 100)
    await wait_successes(receiver, "/fifo", len(ids), timeout=60)
    assert first_successes(receiver, "/fifo") == ids
    assert any(r.status == 500 for r in receiver.at("/fifo")), "no failure was exercised"


async def test_a_rate_limit_holds_while_an_unlimited_endpoint_runs_at_full_speed(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server()
    await subscribe(server, receiver.url("/limited"), ["product.*"], rate_limit_per_second=20)
    await subscribe(server, receiver.url("/fast"), ["product.*"])
    await publish_in_feed_order(server, 60)
    await receiver.wait_count(60, "/fast", timeout=30)
    limited_when_fast_done = len(receiver.at("/limited"))
    await receiver.wait_count(60, "/limited", timeout=30)
    times = [r.at for r in receiver.at("/limited")]
    assert max_in_any_second(times) <= 21  # 20 a second, and one burst
    assert times[-1] - times[0] >= 2.8  # 60 at 20 a second: about 3 s
    assert limited_when_fast_done < 40, "the unlimited endpoint was held back"
