"""The storage port: units of work over one database, and the wake-ups that go with it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from .repositories import (
    DeliveryRepository,
    EventRepository,
    FeedRepository,
    PortalSessionRepository,
    RegistryRepository,
    RetentionRepository,
    StateRepository,
    SubscriptionRepository,
)
from .wakeups import Wakeups


class UnitOfWork(Protocol):
    """The repositories on one transaction, and what to do once it has committed."""

    @property
    def events(self) -> EventRepository: ...
    @property
    def deliveries(self) -> DeliveryRepository: ...
    @property
    def subscriptions(self) -> SubscriptionRepository: ...
    @property
    def registry(self) -> RegistryRepository: ...
    @property
    def feed(self) -> FeedRepository: ...
    @property
    def retention(self) -> RetentionRepository: ...
    @property
    def state(self) -> StateRepository: ...
    @property
    def portal_sessions(self) -> PortalSessionRepository: ...

    def on_commit(self, hook: Callable[[], None]) -> None:
        """Call `hook` once the work has committed (never if it fails), so that whoever
        writes inside another's transaction says what must follow the commit itself."""
        ...


class Storage(Protocol):
    """One database, whichever engine: made once from the database URL (storage/factory.py)."""

    @property
    def wakeups(self) -> Wakeups: ...

    @property
    def wakeup_precedes_visibility(self) -> bool:
        """Whether a commit that woke a reader may still be hidden from it for a moment (below
        the feed's visibility horizon), so a woken reader that finds nothing looks again soon."""
        ...

    @property
    def serialises_writes(self) -> bool:
        """Whether this process's write transactions run one after another (SQLite's one
        writer): reads a write depends on are then better done before opening it, beside the
        other callers' reads, than inside it where every later writer waits for them."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """Read-write work, committed when the block exits without an error; then its on-commit
        hooks run."""
        ...

    def autocommit(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """Work whose writes are each one atomic call (publishing, leasing): the engine may
        commit each by itself, saving the BEGIN and COMMIT round trips."""
        ...

    def read(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """Read-only work."""
        ...

    async def ping(self) -> None:
        """One round trip to the database; raises StorageUnavailable when it does not answer."""
        ...

    async def dispose(self) -> None: ...
