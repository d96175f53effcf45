"""The async engine, transactions, and the translation of connection failures."""

from __future__ import annotations

import select
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InterfaceError, InvalidatePoolError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from webhook_grpc.domain.errors import StorageUnavailable

from .urls import async_url

CONNECT_TIMEOUT = 3
POOL_TIMEOUT = 5
# Read-only transactions on SQLite skip the write lock that BEGIN IMMEDIATE takes.
_READ_ONLY = "webhook_grpc_read_only"


class Database:
    """One engine per process. Write transactions on SQLite take the write lock up front
    (BEGIN IMMEDIATE), so check-then-insert rules like the subscription limit hold under
    concurrency; PostgreSQL runs READ COMMITTED with explicit locks where a rule needs one."""

    def __init__(self, database_url: str, *, pool_size: int = 10) -> None:
        url = async_url(database_url)
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.is_postgres = not self.is_sqlite
        options: dict[str, Any] = {}
        if self.is_postgres:
            # While the database is away every call must fail fast with UNAVAILABLE: a new
            # connection gives up after CONNECT_TIMEOUT, a caller waiting for a pooled one after
            # POOL_TIMEOUT (so at most about both together), and a pooled connection that the
            # server has closed is replaced before use (see `_replace_if_closed_by_server`; a
            # pre-ping would cost a round trip on every checkout). TCP keepalives and
            # tcp_user_timeout let the kernel declare a pooled connection dead when the network
            # drops packets silently, instead of after the default ~15 minutes of
            # retransmissions.
            options = {
                "pool_size": pool_size,
                "max_overflow": pool_size,
                "pool_timeout": POOL_TIMEOUT,
                "connect_args": {
                    "connect_timeout": CONNECT_TIMEOUT,
                    "keepalives": 1,
                    "keepalives_idle": 30,
                    "keepalives_interval": 5,
                    "keepalives_count": 3,
                    "tcp_user_timeout": 10_000,  # milliseconds
                },
            }
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        else:
            event.listen(self.engine.sync_engine.pool, "checkout", _replace_if_closed_by_server)

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction, committed when the block exits without an error."""
        async with self._unavailable_on_failure(), self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """On PostgreSQL, a connection on which every statement commits by itself, which saves
        the BEGIN and COMMIT round trips: only for work whose storage functions write with one
        atomic statement there. On SQLite, where they may take several, a write transaction."""
        if self.is_sqlite:
            async with self.transaction() as connection:
                yield connection
            return
        async with self._unavailable_on_failure(), self.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (one consistent snapshot on PostgreSQL's READ COMMITTED
        per statement; callers needing more use `transaction`)."""
        async with self._unavailable_on_failure(), self.engine.connect() as connection:
            await connection.execution_options(**{_READ_ONLY: True})
            async with connection.begin():
                yield connection

    @asynccontextmanager
    async def _unavailable_on_failure(self) -> AsyncIterator[None]:
        try:
            yield
        except (OperationalError, InterfaceError) as error:
            # Lost connections, refused connections, timeouts and SQLite lock contention:
            # all retryable by the client.
            raise StorageUnavailable(str(error.orig or error)) from error
        except PoolTimeout as error:
            # Every pooled connection is busy, typically each stuck connecting to a database
            # that does not answer: as retryable as the failures that cause it.
            raise StorageUnavailable(str(error)) from error
        except DBAPIError as error:
            if error.connection_invalidated:
                raise StorageUnavailable(str(error.orig or error)) from error
            raise
        except OSError as error:
            raise StorageUnavailable(str(error)) from error


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


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own handling is lax).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
