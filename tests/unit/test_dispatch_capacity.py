"""The dispatcher's scheduling policy (dispatch/capacity.py), driven by the events the
dispatcher tells it: no HTTP server, no database."""

from __future__ import annotations

from datetime import UTC, datetime

from webhook_grpc.dispatch.capacity import DispatchCapacity
from webhook_grpc.storage.ports import LeaseRequest


class Wakes:
    """Counts the wake-ups of the lease loop, with the process's held count at each."""

    def __init__(self) -> None:
        self.at: list[int] = []
        self.capacity: DispatchCapacity | None = None

    def __call__(self) -> None:
        assert self.capacity is not None
        self.at.append(self.capacity.held)


def capacity(
    dispatcher_concurrency: int, endpoint_concurrency: int
) -> tuple[DispatchCapacity, Wakes]:
    wakes = Wakes()
    wakes.capacity = DispatchCapacity(dispatcher_concurrency, endpoint_concurrency, wakes)
    return wakes.capacity, wakes


def lease(capacity: DispatchCapacity, subscription_id: str, count: int) -> None:
    for _ in range(count):
        capacity.leased(subscription_id)


def attempt(capacity: DispatchCapacity, subscription_id: str, *, recorded: bool = True) -> None:
    capacity.attempt_started(subscription_id)
    capacity.attempt_finished(subscription_id, recorded=recorded)


def test_a_full_lane_is_left_out_of_the_next_lease_and_others_keep_their_room() -> None:
    cap, _ = capacity(dispatcher_concurrency=100, endpoint_concurrency=4)
    assert cap.lane_limit == 8
    lease(cap, "slow", 8)
    lease(cap, "busy", 3)
    for _ in range(4):  # the slow endpoint's workers are all stuck in an attempt
        cap.attempt_started("slow")

    assert cap.lanes_to_skip() == ["slow"]
    assert cap.lane_room() == {"slow": 0, "busy": 5}
    now = datetime.now(UTC)
    request = LeaseRequest(now, now, "lease", cap.room(), cap.lane_limit, cap.lane_room())
    assert request.full == cap.lanes_to_skip()
    assert cap.any_full(["busy", "slow"])
    assert not cap.any_full(["busy", "new"])
    # The process's room is what it leased and nothing more: other lanes can still be served.
    assert cap.room() == 100 - 11
    assert cap.in_flight == 4


def test_a_lane_asks_for_a_refill_once_when_what_it_holds_runs_low() -> None:
    cap, wakes = capacity(dispatcher_concurrency=100, endpoint_concurrency=4)
    assert cap.lane_refill == 6
    lease(cap, "a", 8)
    attempt(cap, "a")
    assert not cap.needs_refill("a")
    attempt(cap, "a")
    assert wakes.at == [6]  # at the threshold, not before
    for _ in range(3):
        attempt(cap, "a")
    assert wakes.at == [6]  # asked once: a subscription with nothing more due stays quiet
    lease(cap, "a", 1)  # the refill came: the lane may ask again
    assert cap.needs_refill("a")
    attempt(cap, "a")
    assert wakes.at == [6, 3]


def test_the_process_asks_for_a_refill_when_a_quarter_of_its_room_is_free() -> None:
    cap, wakes = capacity(dispatcher_concurrency=40, endpoint_concurrency=8)
    assert (cap.process_refill, cap.lane_limit, cap.lane_refill) == (30, 16, 12)
    lease(cap, "a", 16)
    lease(cap, "b", 16)
    for _ in range(5):
        attempt(cap, "a", recorded=False)
    # 30 held: the process crossed its threshold; 28 held: lane a ran low.
    assert wakes.at == [30, 28]


def test_attempts_handed_to_the_recorder_hold_room_until_it_commits_them() -> None:
    cap, wakes = capacity(dispatcher_concurrency=4, endpoint_concurrency=4)
    lease(cap, "a", 4)
    assert cap.room() == 0
    for _ in range(3):
        attempt(cap, "a")
    attempt(cap, "a", recorded=False)  # failed before reaching the recorder
    assert (cap.held, cap.uncommitted, cap.room()) == (0, 3, 1)
    wakes.at.clear()

    cap.wake_on_commit()
    cap.committed(2)
    assert (cap.uncommitted, cap.room()) == (1, 3)
    assert len(wakes.at) == 1
    cap.committed(1)  # no one waits for this commit: no wake-up
    assert cap.room() == 4
    assert len(wakes.at) == 1


def test_deliveries_handed_back_on_stop_free_their_room_and_their_lane() -> None:
    cap, _ = capacity(dispatcher_concurrency=10, endpoint_concurrency=1)
    lease(cap, "a", 2)
    lease(cap, "b", 1)
    cap.attempt_started("a")
    cap.released("a", 1)
    cap.released("b", 1)
    assert (cap.held, cap.room()) == (1, 9)
    assert cap.lane_room() == {"a": 1}
    cap.attempt_finished("a", recorded=False)  # cancelled at the end of the grace
    assert (cap.held, cap.room(), cap.in_flight) == (0, 10, 0)
    assert cap.lane_room() == {}
