"""Feed stream rules without a server: the wait that must not swallow a cancellation, the
purge check, and the stream slots."""

from __future__ import annotations

import asyncio

import pytest

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.errors import LimitExceeded
from webhook_grpc.services.feed import _purged_past
from webhook_grpc.services.stream_slots import StreamSlots
from webhook_grpc.storage.ports import wait_for_wake


async def test_a_cancellation_arriving_with_the_wake_up_is_not_swallowed() -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_for_wake(event, 10))
    await asyncio.sleep(0)
    # Both in the same turn of the loop: asyncio.wait_for on Python 3.11 returns True here and
    # the task runs on as if never cancelled.
    event.set()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_the_wait_says_whether_it_was_woken() -> None:
    event = asyncio.Event()
    assert await wait_for_wake(event, 0.01) is False
    event.set()
    assert await wait_for_wake(event, 10) is True


def p(seq: int) -> FeedPosition:
    return FeedPosition(0, seq)


def test_a_purge_past_the_position_is_a_skip_unless_it_predates_the_stream() -> None:
    assert not _purged_past(p(10), None, None)
    assert not _purged_past(p(10), p(10), None)  # everything purged was sent
    assert _purged_past(p(10), p(11), None)
    assert _purged_past(p(10), p(11), p(5))
    # From the earliest event: what was purged before the stream started was never owed.
    assert not _purged_past(p(0), p(7), p(7))
    assert _purged_past(p(0), p(8), p(7))


def test_stream_slots_cap_each_tenant_and_the_total_and_come_back() -> None:
    slots = StreamSlots(per_tenant=2, total=3)
    with slots.hold("acme"), slots.hold("acme"):
        with pytest.raises(LimitExceeded, match="max_streams_per_tenant"), slots.hold("acme"):
            pass
        with slots.hold("globex"), pytest.raises(LimitExceeded, match="max_streams"):  # noqa: SIM117
            with slots.hold("initech"):
                pass
        assert slots.open("acme") == 2 and slots.open() == 2
    assert slots.open() == 0


def test_a_stream_that_fails_gives_its_slot_back() -> None:
    slots = StreamSlots(per_tenant=1, total=1)
    with pytest.raises(RuntimeError), slots.hold("acme"):
        raise RuntimeError("the stream failed")
    with slots.hold("acme"):
        assert slots.open("acme") == 1
