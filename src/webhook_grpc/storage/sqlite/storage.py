"""The SQLite storage: the engine, and the repositories on each connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..common.engine import READ_ONLY
from ..common.unit_of_work import DriverRepositories, SqlStorage, SqlUnitOfWork
from ..notifications import Notifier
from .connection import StopOnce
from .deliveries import SqliteDeliveries
from .repositories import SqliteEvents, SqliteFeed, SqliteRetention, SqliteSubscriptions
from .writer import Writer


class SqliteStorage(SqlStorage):
    """Every write transaction goes through one writer with group commit (writer.py); reads
    run on pooled connections beside it (WAL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, Notifier(), REPOSITORIES.unit, wakeup_precedes_visibility=False)
        self.writer = Writer(engine, REPOSITORIES.unit)

    @property
    def serialises_writes(self) -> bool:
        return True

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlUnitOfWork]:
        async with self.writer.transaction() as unit:
            yield unit

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[SqlUnitOfWork]:
        async with self.writer.transaction() as unit:
            yield unit

    async def dispose(self) -> None:
        await self.writer.stop()
        await super().dispose()


def open_sqlite(url: URL) -> SqliteStorage:
    """Storage on the SQLite database at `url` (aiosqlite). Only this process's wake-ups
    exist: waiters also poll."""

    def connect() -> StopOnce:
        # What SQLAlchemy's aiosqlite dialect would connect with, through our connection.
        arguments, options = engine.dialect.create_connect_args(engine.url)
        return StopOnce(*arguments, **options)

    engine = create_async_engine(url, async_creator=connect)
    _configure(engine)
    return SqliteStorage(engine)


REPOSITORIES = DriverRepositories(
    events=SqliteEvents,
    deliveries=SqliteDeliveries,
    subscriptions=SqliteSubscriptions,
    feed=SqliteFeed,
    retention=SqliteRetention,
    insert=sqlite.insert,
)


def _configure(engine: AsyncEngine) -> None:
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
        # Write transactions take the write lock up front, so check-then-insert rules like
        # the subscription limit hold under concurrency; read-only ones skip it.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
