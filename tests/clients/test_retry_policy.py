"""The client's backoff policy: bounded, exponential, jittered."""

from __future__ import annotations

import random

import grpc
import pytest
from webhook_grpc_client import RetryPolicy, WebhooksClient


def test_delays_grow_exponentially_up_to_the_cap_with_full_jitter() -> None:
    policy = RetryPolicy(max_attempts=8, initial_delay=0.1, max_delay=1.0, multiplier=2.0)
    rng = random.Random(7)
    for failures, bound in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (7, 1.0)]:
        delays = [policy.delay(failures, rng) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8  # jitter spans the whole range
        assert min(delays) < bound * 0.2


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(initial_delay=-1)


class Refusing:
    """A real gRPC server on loopback whose PublishEvent always fails with one status code."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code
        self.calls = 0
        self.server = grpc.aio.server()
        handler = grpc.unary_unary_rpc_method_handler(
            self._publish, request_deserializer=lambda raw: raw
        )
        self.server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "webhooks.v1.EventService", {"PublishEvent": handler}
                )
            ]
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    async def _publish(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.calls += 1
        await context.abort(self.code, "refused by the test")
        raise AssertionError("abort returns only by raising")


TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@pytest.mark.parametrize(
    "code", [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK], ids=lambda c: c.name
)
async def test_only_transient_codes_are_retried(code: grpc.StatusCode) -> None:
    refusing = Refusing(code)
    await refusing.server.start()
    try:
        policy = RetryPolicy(max_attempts=3, initial_delay=0.001, max_delay=0.001)
        async with WebhooksClient(f"127.0.0.1:{refusing.port}", retry=policy) as client:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await client.publish("acme", "product.created", "p1", {"id": "p1"})
    finally:
        await refusing.server.stop(None)
    assert raised.value.code() == code
    assert refusing.calls == (3 if code in TRANSIENT else 1)
