"""Time windows end to end, on a real server with a clock the test moves: the failure window of
auto-disable, the grace of a secret rotation, and Retry-After (honoured, on 429 and 503 only, and
capped at the schedule's longest step).

The clock stands still between moves, so a retry falls due only when the test moves it there,
and the times the server stores are exact: no sleeping, no timing margins."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from webhook_grpc_client import WebhookVerificationError, verify

from tests.conftest import ServerFactory
from tests.support.clock import MovableClock
from tests.support.factories import (
    deliveries_of,
    publish,
    subscribe,
    subscription_of,
    wait_delivery,
)
from tests.support.receiver import Received, Receiver
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb


async def test_failures_older_than_the_failure_window_do_not_count(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    clock = MovableClock()
    server = await make_server(
        clock=clock, failure_window="1h", min_deliveries_for_disable=3, max_retry_attempts=1
    )
    receiver.on("/hook", statuses=[500])
    created = await subscribe(server, receiver.url())

    async def fail_once() -> None:
        event = await publish(server)
        [delivery] = await deliveries_of(server, event.id)
        # FAILED is recorded in the transaction that also checks the failure rate.
        done = await wait_delivery(server, delivery.id, timeout=30)
        assert done.status == dpb.DELIVERY_STATUS_FAILED

    await fail_once()
    await fail_once()
    clock.advance(timedelta(hours=2))
    await fail_once()
    await fail_once()
    # Four failures, but only two in the last hour: below the minimum of three.
    subscription = await subscription_of(server, created.subscription.id)
    assert subscription.status == spb.SUBSCRIPTION_STATUS_ACTIVE

    await fail_once()
    subscription = await subscription_of(server, created.subscription.id)
    assert subscription.status == spb.SUBSCRIPTION_STATUS_DISABLED
    assert subscription.disabled_reason == spb.DISABLED_REASON_FAILURE_RATE


def signed_by(request: Received, secret: str, clock: MovableClock) -> bool:
    """Whether both signature headers carry a valid signature with `secret`."""
    overview = {"X-Webhook-Signature": request.headers["X-Webhook-Signature"]}
    try:
        verify(request.headers, request.body, secret, now=clock())
        verify(overview, request.body, secret, allow_body_only=True)
    except WebhookVerificationError:
        return False
    return True


async def test_the_old_secret_signs_only_during_the_rotation_grace(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    clock = MovableClock()
    server = await make_server(clock=clock, rotation_grace="2m")
    created = await subscribe(server, receiver.url())
    rotated = await server.subscriptions.RotateSubscriptionSecret(
        spb.RotateSubscriptionSecretRequest(id=created.subscription.id)
    )
    old, new = created.secret, rotated.secret

    clock.advance(timedelta(minutes=1, seconds=59))
    await publish(server, entity_id="within")
    await receiver.wait_count(1, timeout=30)
    within = receiver.received[0]
    assert len(within.headers["webhook-signature"].split(" ")) == 2
    assert len(within.headers["X-Webhook-Signature"].split(" ")) == 2
    assert signed_by(within, old, clock) and signed_by(within, new, clock)

    clock.advance(timedelta(seconds=2))
    await publish(server, entity_id="after")
    await receiver.wait_count(2, timeout=30)
    after = receiver.received[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert len(after.headers["X-Webhook-Signature"].split(" ")) == 1
    assert signed_by(after, new, clock)
    assert not signed_by(after, old, clock)


@pytest.mark.parametrize(
    ("status", "retry_after", "attempt", "delay"),
    [
        # Longer than the schedule's step: honoured (429 and 503 alike).
        (429, "2", 1, timedelta(seconds=2)),
        (503, "2", 1, timedelta(seconds=2)),
        # Longer than the schedule's longest step: capped at it.
        (429, "3600", 1, timedelta(seconds=3)),
        (503, "3600", 1, timedelta(seconds=3)),
        # Shorter than the step, or absent: the schedule.
        (429, "0", 2, timedelta(milliseconds=200)),
        (429, None, 2, timedelta(milliseconds=200)),
        # On any other status the header means nothing.
        (500, "2", 2, timedelta(milliseconds=200)),
    ],
)
async def test_retry_after_on_429_and_503_is_honoured_up_to_the_longest_step(
    make_server: ServerFactory,
    receiver: Receiver,
    status: int,
    retry_after: str | None,
    attempt: int,
    delay: timedelta,
) -> None:
    clock = MovableClock()
    schedule = ["0ms", "100ms", "200ms", "3s"]
    server = await make_server(clock=clock, backoff_schedule=schedule, max_retry_attempts=4)
    # The case is the answer to attempt `attempt`; any before it fail plainly, any after succeed.
    receiver.on(
        "/hook",
        statuses=[500] * (attempt - 1) + [status, 200],
        headers={"Retry-After": retry_after} if retry_after else {},
    )
    await subscribe(server, receiver.url())
    event = await publish(server)
    [delivery] = await deliveries_of(server, event.id)
    for earlier in range(1, attempt):
        failed = await wait_delivery(
            server, delivery.id, lambda d, n=earlier: d.attempt_count == n, 30
        )
        clock.now = failed.next_attempt_at.ToDatetime(UTC)
    waiting = await wait_delivery(server, delivery.id, lambda d: d.attempt_count == attempt, 30)
    assert waiting.status == dpb.DELIVERY_STATUS_PENDING
    last = waiting.attempts[-1]
    assert last.status_code == status
    due = waiting.next_attempt_at.ToDatetime(UTC)
    assert due - last.attempted_at.ToDatetime(UTC) == delay

    # It is attempted again when that time comes, and succeeds.
    clock.now = due
    done = await wait_delivery(server, delivery.id, timeout=30)
    assert done.status == dpb.DELIVERY_STATUS_SUCCEEDED
    assert done.attempt_count == attempt + 1
    assert {r.headers["webhook-id"] for r in receiver.received} == {event.id}
