"""How much work a dispatcher process may hold, per lane and in all, and when to lease more.

Isolation: each subscription has a lane in this process, with at most `endpoint_concurrency`
workers POSTing its leased deliveries one after another. A lane holds up to twice that in
leased work (the rest waits for a worker) and is refilled when what waits runs low, so a worker
that finishes takes the next delivery at once instead of after the next lease query; a full
lane is left out of the next lease, so a slow or dead endpoint holds only its own workers and
never the queue. Twice is also the most a lease may cover: a delivery waits at most one round
of attempts and then makes its own, each bounded by delivery_timeout, and lease_duration is at
least twice that.

The process holds up to `dispatcher_concurrency` deliveries: leased (waiting or attempted) or
attempted and handed to the recorder, until it commits them, so a slow database holds back
leasing instead of letting attempts pile up unrecorded. It asks for a refill when a quarter of
that room is free, or when a lane runs low: fewer than half its workers' worth waits, so the
refill lands before its workers run dry.

`DispatchCapacity` counts all of it. The dispatcher tells it what happens (leased, attempt
started, attempt finished, committed, released) and asks it how much to lease and which lanes
to leave out; the capacity wakes the lease loop when a refill is due."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

# Leased work a lane may hold, in multiples of endpoint_concurrency (see the module docstring).
LEASE_AHEAD = 2


@dataclass
class _LaneCount:
    waiting: int = 0
    attempting: int = 0
    # Asked for a refill since the last lease that brought it work: it asks once, so a lane
    # whose subscription has nothing more due does not make every attempt wake the lease loop.
    asked: bool = False

    @property
    def held(self) -> int:
        return self.waiting + self.attempting


class DispatchCapacity:
    """The one count of a dispatcher's work; `wake` is called when the lease loop should
    lease again."""

    def __init__(
        self, dispatcher_concurrency: int, endpoint_concurrency: int, wake: Callable[[], None]
    ) -> None:
        self.process_limit = dispatcher_concurrency
        self.lane_limit = endpoint_concurrency * LEASE_AHEAD
        self.lane_refill = endpoint_concurrency + endpoint_concurrency // 2
        self.process_refill = dispatcher_concurrency * 3 // 4
        self._wake = wake
        self._lanes: dict[str, _LaneCount] = {}
        self._held = 0
        self._uncommitted = 0
        self._wake_on_commit = False

    # What the dispatcher asks.

    def room(self) -> int:
        """Deliveries this process may still lease (attempts count until committed)."""
        return self.process_limit - self._held - self._uncommitted

    def lane_room(self) -> Mapping[str, int]:
        """What each lane holding work may still take; a lane not named may take `lane_limit`."""
        return {s: self.lane_limit - lane.held for s, lane in self._lanes.items()}

    def lanes_to_skip(self) -> list[str]:
        """The lanes left out of the next lease (full), sorted."""
        return sorted(s for s, lane in self._lanes.items() if self._full(lane))

    def any_full(self, subscription_ids: Iterable[str]) -> bool:
        return any(self._full(self._lanes.get(s)) for s in set(subscription_ids))

    def _full(self, lane: _LaneCount | None) -> bool:
        return lane is not None and lane.held >= self.lane_limit

    def needs_refill(self, subscription_id: str) -> bool:
        """Whether the lane runs low and has not asked for more since its last work came."""
        lane = self._lanes.get(subscription_id)
        return lane is not None and not lane.asked and lane.held <= self.lane_refill

    @property
    def held(self) -> int:
        """Deliveries leased and not yet attempted to the end."""
        return self._held

    @property
    def in_flight(self) -> int:
        return sum(lane.attempting for lane in self._lanes.values())

    @property
    def uncommitted(self) -> int:
        return self._uncommitted

    # What the dispatcher tells it.

    def leased(self, subscription_id: str) -> None:
        """A delivery of the lane came in and waits for a worker."""
        lane = self._lanes.get(subscription_id)
        if lane is None:
            lane = self._lanes[subscription_id] = _LaneCount()
        lane.waiting += 1
        lane.asked = False
        self._held += 1

    def attempt_started(self, subscription_id: str) -> None:
        lane = self._lanes[subscription_id]
        lane.waiting -= 1
        lane.attempting += 1

    def attempt_finished(self, subscription_id: str, *, recorded: bool) -> None:
        """An attempt ended; `recorded` when it went to the recorder, where it holds room until
        committed. Wakes the lease loop when the lane or the process runs low (the process
        count drops one at a time, so equality catches each crossing once)."""
        lane = self._lanes[subscription_id]
        lane.attempting -= 1
        self._held -= 1
        if recorded:
            self._uncommitted += 1
        if self.needs_refill(subscription_id):
            lane.asked = True
            self._wake()
        elif self._held == self.process_refill:
            self._wake()
        if lane.held == 0:
            del self._lanes[subscription_id]

    def released(self, subscription_id: str, count: int) -> None:
        """`count` waiting deliveries of the lane were handed back unattempted."""
        lane = self._lanes[subscription_id]
        lane.waiting -= count
        self._held -= count
        if lane.held == 0:
            del self._lanes[subscription_id]

    def wake_on_commit(self) -> None:
        """Wake the lease loop after the recorder's next commit (which frees room)."""
        self._wake_on_commit = True

    def committed(self, count: int) -> None:
        """The recorder is done with `count` attempts (committed, or dropped as unrecordable)."""
        self._uncommitted -= count
        if self._wake_on_commit:
            self._wake_on_commit = False
            self._wake()
