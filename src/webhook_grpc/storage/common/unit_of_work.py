"""Units of work on a SQLAlchemy engine: the repositories on one connection, and the hooks that
run once it has committed. Each driver supplies its own repositories (`DriverRepositories`) and
its autocommit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import sqlalchemy
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..ports import (
    DeliveryRepository,
    EventRepository,
    FeedRepository,
    PortalSessionRepository,
    RegistryRepository,
    RetentionRepository,
    StateRepository,
    SubscriptionRepository,
    Wakeups,
)
from .engine import READ_ONLY, unavailable_on_failure
from .portal_sessions import CorePortalSessions
from .registry import CoreRegistry
from .state import CoreState
from .upsert import InsertOf


@dataclass(slots=True)
class SqlUnitOfWork:
    events: EventRepository
    deliveries: DeliveryRepository
    subscriptions: SubscriptionRepository
    registry: RegistryRepository
    feed: FeedRepository
    retention: RetentionRepository
    state: StateRepository
    portal_sessions: PortalSessionRepository
    _hooks: list[Callable[[], None]] = field(default_factory=list)

    def on_commit(self, hook: Callable[[], None]) -> None:
        self._hooks.append(hook)

    def committed(self) -> None:
        hooks, self._hooks = self._hooks, []
        for hook in hooks:
            hook()


UnitFactory = Callable[[AsyncConnection], SqlUnitOfWork]


@dataclass(frozen=True, slots=True)
class DriverRepositories:
    """The repositories a driver writes for its engine and its INSERT; `unit` puts them on one
    connection beside the ones every engine shares."""

    events: Callable[[AsyncConnection], EventRepository]
    deliveries: Callable[[AsyncConnection], DeliveryRepository]
    subscriptions: Callable[[AsyncConnection], SubscriptionRepository]
    feed: Callable[[AsyncConnection], FeedRepository]
    retention: Callable[[AsyncConnection, CoreState], RetentionRepository]
    insert: InsertOf

    def unit(self, conn: AsyncConnection) -> SqlUnitOfWork:
        state = CoreState(conn, self.insert)
        return SqlUnitOfWork(
            events=self.events(conn),
            deliveries=self.deliveries(conn),
            subscriptions=self.subscriptions(conn),
            registry=CoreRegistry(conn, self.insert),
            feed=self.feed(conn),
            retention=self.retention(conn, state),
            state=state,
            portal_sessions=CorePortalSessions(conn),
        )


class SqlStorage:
    """One engine per process; `autocommit` is the driver's."""

    def __init__(
        self,
        engine: AsyncEngine,
        wakeups: Wakeups,
        unit: UnitFactory,
        *,
        wakeup_precedes_visibility: bool,
    ) -> None:
        self.engine = engine
        self._wakeups = wakeups
        self._unit = unit
        self._wakeup_precedes_visibility = wakeup_precedes_visibility

    @property
    def wakeups(self) -> Wakeups:
        return self._wakeups

    @property
    def wakeup_precedes_visibility(self) -> bool:
        return self._wakeup_precedes_visibility

    @property
    def serialises_writes(self) -> bool:
        return False

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlUnitOfWork]:
        async with unavailable_on_failure(), self.engine.begin() as connection:
            unit = self._unit(connection)
            yield unit
        unit.committed()

    async def ping(self) -> None:
        async with unavailable_on_failure(), self.engine.connect() as connection:
            await connection.execute(sqlalchemy.text("SELECT 1"))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlUnitOfWork]:
        async with unavailable_on_failure(), self.engine.connect() as connection:
            await connection.execution_options(**{READ_ONLY: True})
            async with connection.begin():
                unit = self._unit(connection)
                yield unit
        unit.committed()

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[SqlUnitOfWork]:
        async with self.transaction() as unit:
            yield unit
