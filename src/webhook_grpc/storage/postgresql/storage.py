"""The PostgreSQL storage: the pooled engine, autocommit connections, and the repositories on
each connection."""

from __future__ import annotations

import select
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..common.engine import unavailable_on_failure
from ..common.unit_of_work import DriverRepositories, SqlStorage, SqlUnitOfWork, UnitFactory
from ..notifications import Notifier
from ..ports import Wakeups
from .deliveries import PostgresDeliveries
from .events import KeptContexts, PostgresEvents
from .repositories import PostgresFeed, PostgresRetention, PostgresSubscriptions

CONNECT_TIMEOUT = 3
POOL_TIMEOUT = 5


class PostgresStorage(SqlStorage):
    def __init__(
        self,
        engine: AsyncEngine,
        autocommit_engine: AsyncEngine,
        wakeups: Wakeups,
        unit: UnitFactory,
    ) -> None:
        super().__init__(engine, wakeups, unit, wakeup_precedes_visibility=True)
        self._autocommit_engine = autocommit_engine

    async def dispose(self) -> None:
        await self._autocommit_engine.dispose()
        await super().dispose()

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[SqlUnitOfWork]:
        """A connection on which every statement commits by itself, which saves the BEGIN
        and COMMIT round trips: the repositories' writes used there are one atomic statement
        each on PostgreSQL. From a pool of its own whose connections are in autocommit mode
        from the start: switching a pooled connection there and back (execution_options, and
        the reset at check-in) cost ~65 us of CPU per call, half of a checkout."""
        async with unavailable_on_failure(), self._autocommit_engine.connect() as connection:
            unit = self._unit(connection)
            yield unit
        unit.committed()


def open_postgres(url: URL, database_url: str, *, pool_size: int = 10) -> PostgresStorage:
    """Storage on the PostgreSQL database at `url` (psycopg 3); wake-ups also reach other
    processes through LISTEN/NOTIFY on `database_url`.

    Two pools. Transactions: `pool_size` connections kept, as many again opened while needed
    and closed at check-in. Autocommit statements (publishing, leasing): twice `pool_size`
    kept, none beyond, so that concurrent publishers reuse connections: with 10 kept and the
    rest closed at check-in, 16 concurrent publishers opened a new PostgreSQL session (a
    backend fork, a few ms of CPU on both sides) for about 1 publish in 19. Either pool holds
    at most twice `pool_size`; a caller waits for a connection up to POOL_TIMEOUT."""
    return PostgresStorage(
        _engine(url, pool_size, max_overflow=pool_size),
        _engine(url, 2 * pool_size, max_overflow=0, isolation_level="AUTOCOMMIT"),
        Notifier(database_url),
        repositories().unit,
    )


def _engine(url: URL, pool_size: int, **options: Any) -> AsyncEngine:
    # While the database is away every call must fail fast with UNAVAILABLE: a new connection
    # gives up after CONNECT_TIMEOUT, a caller waiting for a pooled one after POOL_TIMEOUT (so
    # at most about both together), and a pooled connection that the server has closed is
    # replaced before use (see `_replace_if_closed_by_server`; a pre-ping would cost a round
    # trip on every checkout). TCP keepalives and tcp_user_timeout let the kernel declare a
    # pooled connection dead when the network drops packets silently, instead of after the
    # default ~15 minutes of retransmissions.
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        pool_timeout=POOL_TIMEOUT,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": 10_000,  # milliseconds
        },
        **options,
    )
    event.listen(engine.sync_engine.pool, "checkout", _replace_if_closed_by_server)
    event.listen(engine.sync_engine, "connect", _in_utc)
    return engine


def repositories() -> DriverRepositories:
    """The driver's repositories; the publish contexts they keep are the storage's own."""
    kept = KeptContexts()
    return DriverRepositories(
        events=lambda conn: PostgresEvents(conn, kept),
        deliveries=PostgresDeliveries,
        subscriptions=PostgresSubscriptions,
        feed=PostgresFeed,
        retention=PostgresRetention,
        insert=postgresql.insert,
    )


def _replace_if_closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout: an idle connection never has anything to read (pooled connections do
    not LISTEN), so a readable socket means the server closed it or is closing it (restart,
    outage, administrator, idle timeout). Raising makes the pool replace every connection
    made before now, as a failed pre-ping would, without a round trip on healthy ones.

    Connections dropped silently by the network are found by the first statement instead
    (tcp_user_timeout), exactly as a pre-ping would have found them."""
    connection = dbapi_connection.driver_connection
    if connection.closed:
        raise InvalidatePoolError("connection closed")
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN)
    if poller.poll(0):
        raise InvalidatePoolError("the server closed the connection")


def _in_utc(connection: Any, _record: Any) -> None:
    """Each new connection's session in UTC: psycopg then reads timestamptz values as datetimes
    in datetime.UTC, which need no conversion (from the server's default zone, converting cost
    about 2 us per value on the feed's hot path). Instants are the same in any session zone."""
    cursor = connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    connection.commit()  # else the pool's rollback on return would undo it
