"""What the portal's endpoint list reads of a subscription's attempts: the failure window's
figures (restarted by activation) and the latest attempt."""

from __future__ import annotations

from dataclasses import replace

from webhook_grpc.domain.models import DeliveryStatus
from webhook_grpc.storage.ports import Storage

from .conftest import NOW, add_subscription, later
from .test_attempts import attempt, three_leased


async def record_three(storage: Storage) -> str:
    """One success at +1 s, failures at +2 s and +3 s; the subscription's id."""
    done, retried, failed = await three_leased(storage)
    async with storage.transaction() as unit:
        await unit.deliveries.record_attempts(
            [
                attempt(done, DeliveryStatus.SUCCEEDED, succeeded=True),
                replace(
                    attempt(retried, DeliveryStatus.PENDING, retry_in=5), attempted_at=later(2)
                ),
                replace(attempt(failed, DeliveryStatus.FAILED), attempted_at=later(3)),
            ]
        )
    return done.subscription_id


async def test_window_figures_count_attempts_and_failures_since_a_time(storage: Storage) -> None:
    subscription_id = await record_three(storage)
    quiet = await add_subscription(storage)

    async with storage.read() as unit:
        assert await unit.deliveries.window_figures([subscription_id, quiet.id], NOW) == {
            subscription_id: (3, 2)
        }
        assert await unit.deliveries.window_figures([subscription_id], later(2)) == {
            subscription_id: (2, 2)
        }


async def test_window_figures_start_again_at_activation(storage: Storage) -> None:
    subscription_id = await record_three(storage)

    async with storage.transaction() as unit:
        await unit.subscriptions.activate(subscription_id, later(3))

    async with storage.read() as unit:
        assert await unit.deliveries.window_figures([subscription_id], NOW) == {
            subscription_id: (1, 1)
        }


async def test_last_attempts_are_the_latest_of_each_subscription(storage: Storage) -> None:
    subscription_id = await record_three(storage)
    quiet = await add_subscription(storage)

    async with storage.read() as unit:
        last = await unit.deliveries.last_attempts([subscription_id, quiet.id])

    assert list(last) == [subscription_id]
    assert last[subscription_id].attempted_at == later(3)
    assert last[subscription_id].status_code == 503
