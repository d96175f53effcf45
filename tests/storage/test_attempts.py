"""Recording attempts moves deliveries on (under their lease only); releasing, cancelling and
rescheduling them."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from webhook_grpc.domain.deliveries import AttemptRecord, LeasedDelivery
from webhook_grpc.domain.models import AttemptError, DeliveryStatus
from webhook_grpc.storage.ports import Storage
from webhook_grpc.storage.urls import sync_url

from .conftest import NOW, add_subscription, later, new_delivery, new_event, publish
from .test_leasing import lease


def attempt(
    leased: LeasedDelivery,
    next_status: DeliveryStatus,
    *,
    succeeded: bool = False,
    retry_in: float | None = None,
    token: str | None = None,
) -> AttemptRecord:
    return AttemptRecord(
        delivery_id=leased.id,
        subscription_id=leased.subscription_id,
        lease_token=token or leased.lease_token,
        attempt_number=leased.attempt_count + 1,
        attempted_at=later(1),
        succeeded=succeeded,
        status_code=200 if succeeded else 503,
        latency=timedelta(milliseconds=12),
        error=None if succeeded else AttemptError.HTTP_STATUS,
        error_message="" if succeeded else "503",
        response_body="ok" if succeeded else "busy",
        next_status=next_status,
        next_attempt_at=later(retry_in) if retry_in is not None else None,
    )


async def three_leased(storage: Storage) -> list[LeasedDelivery]:
    subscription = await add_subscription(storage)
    event = new_event()
    await publish(storage, [event], [new_delivery(event, subscription.id) for _ in range(3)])
    return (await lease(storage)).deliveries


async def test_recorded_attempts_move_deliveries_on(storage: Storage) -> None:
    done, retried, failed = await three_leased(storage)
    async with storage.transaction() as unit:
        await unit.deliveries.relax_durability()
        await unit.deliveries.record_attempts(
            [
                attempt(done, DeliveryStatus.SUCCEEDED, succeeded=True),
                attempt(retried, DeliveryStatus.PENDING, retry_in=5),
                attempt(failed, DeliveryStatus.FAILED),
            ]
        )
    async with storage.read() as unit:
        succeeded = await unit.deliveries.get(done.id, "acme")
        pending = await unit.deliveries.get(retried.id, None)
        gave_up = await unit.deliveries.get(failed.id, None)
        assert await unit.deliveries.get(done.id, "globex") is None
        figures = await unit.deliveries.failure_figures(done.subscription_id, NOW)
        assert await unit.deliveries.pending_summary() == (1, later(5))
    assert succeeded is not None and pending is not None and gave_up is not None
    assert (succeeded.status, succeeded.attempt_count, succeeded.next_attempt_at) == (
        DeliveryStatus.SUCCEEDED,
        1,
        None,
    )
    [recorded] = succeeded.attempts
    assert (recorded.status_code, recorded.response_body, recorded.error) == (200, "ok", None)
    assert recorded.latency == timedelta(milliseconds=12)
    assert (pending.status, pending.next_attempt_at) == (DeliveryStatus.PENDING, later(5))
    assert gave_up.status is DeliveryStatus.FAILED
    assert gave_up.attempts[0].error is AttemptError.HTTP_STATUS
    assert figures == (3, 2)


async def test_an_attempt_under_a_lost_lease_is_recorded_but_moves_nothing(
    storage: Storage,
) -> None:
    leased, *_ = await three_leased(storage)
    async with storage.transaction() as unit:
        await unit.deliveries.record_attempts(
            [attempt(leased, DeliveryStatus.SUCCEEDED, succeeded=True, token="lease_other")]
        )
    async with storage.read() as unit:
        found = await unit.deliveries.get(leased.id, None)
    assert found is not None
    assert (found.status, found.attempt_count, len(found.attempts)) == (
        DeliveryStatus.PENDING,
        0,
        1,
    )


async def test_release_cancel_and_reschedule(storage: Storage) -> None:
    released, cancelled, kept = await three_leased(storage)
    async with storage.transaction() as unit:
        await unit.deliveries.release("lease_other", [released.id], NOW)  # not its lease
        await unit.deliveries.release(released.lease_token, [released.id], later(2))
        await unit.deliveries.cancel([cancelled.id], later(2))
    [again] = (await lease(storage, later(2), token="lease_2")).deliveries
    assert again.id == released.id
    async with storage.transaction() as unit:
        await unit.deliveries.record_attempts([attempt(kept, DeliveryStatus.FAILED)])
        restarted = await unit.deliveries.reschedule(
            later(3),
            subscription_id=kept.subscription_id,
            from_status=[DeliveryStatus.FAILED, DeliveryStatus.CANCELLED],
            created_since=NOW,
        )
        assert restarted == 2
        assert await unit.deliveries.cancel_pending(kept.subscription_id, later(4)) == 3
    async with storage.read() as unit:
        statuses = {d.status for d in await unit.deliveries.list_page("acme", limit=10)}
        history = await unit.deliveries.get(kept.id, None)
    assert statuses == {DeliveryStatus.CANCELLED}
    assert history is not None and history.attempt_count == 0 and len(history.attempts) == 1


async def test_delivery_pages_go_newest_first_with_filters(storage: Storage) -> None:
    subscription = await add_subscription(storage)
    events = [new_event(entity_id=f"p{i}", published_at=later(i)) for i in range(3)]
    rows = [new_delivery(e, subscription.id) for e in events]
    await publish(storage, events, rows)
    async with storage.read() as unit:
        page = await unit.deliveries.list_page("acme", limit=2)
        rest = await unit.deliveries.list_page(
            "acme", before=(page[-1].created_at, page[-1].id), limit=2
        )
        by_event = await unit.deliveries.list_page("acme", event_id=events[0]["id"], limit=5)
        none = await unit.deliveries.list_page("acme", status=DeliveryStatus.SUCCEEDED, limit=5)
    assert [d.id for d in page + rest] == [r["id"] for r in reversed(rows)]
    assert [d.id for d in by_event] == [rows[0]["id"]] and none == []


async def test_attempts_of_deliveries_deleted_meanwhile_are_left_out_the_rest_recorded(
    storage: Storage, database_url: str
) -> None:
    """Retention may purge a delivery while its attempt is in flight: the other attempts of
    the batch are still recorded."""
    subscription = await add_subscription(storage)
    events = [new_event(entity_id=f"p{i}") for i in range(2)]
    await publish(storage, events, [new_delivery(e, subscription.id) for e in events])
    gone, kept = sorted(
        (await lease(storage)).deliveries, key=lambda d: d.event_id != events[0]["id"]
    )
    engine = sa.create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM deliveries WHERE id = :id"), {"id": gone.id})
    finally:
        engine.dispose()
    async with storage.transaction() as unit:
        recorded = await unit.deliveries.record_attempts(
            [
                attempt(gone, DeliveryStatus.SUCCEEDED, succeeded=True),
                attempt(kept, DeliveryStatus.SUCCEEDED, succeeded=True),
            ]
        )
    assert recorded == 1
    async with storage.read() as unit:
        assert await unit.deliveries.get(gone.id, None) is None
        delivery = await unit.deliveries.get(kept.id, None)
        assert await unit.deliveries.failure_figures(subscription.id, NOW) == (1, 0)
    assert delivery is not None
    assert (delivery.status, delivery.attempt_count) == (DeliveryStatus.SUCCEEDED, 1)
    assert len(delivery.attempts) == 1
