"""The SQLite storage: the engine, and the repositories on each connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection

from ..common.engine import READ_ONLY, unavailable_on_failure
from ..common.unit_of_work import DriverRepositories, SqlStorage, SqlUnitOfWork
from ..notifications import Notifier
from .connection import StopOnce
from .deliveries import SqliteDeliveries
from .publish_context import TRIGGERS, PublishContextCache, install_triggers, shared_cache
from .repositories import SqliteEvents, SqliteFeed, SqliteRetention, SqliteSubscriptions
from .writer import Writer


class SqliteStorage(SqlStorage):
    """Every write transaction goes through one writer with group commit (writer.py); reads
    run on pooled connections beside it (WAL)."""

    def __init__(self, engine: AsyncEngine, publish_contexts: PublishContextCache) -> None:
        repositories = replace(REPOSITORIES, events=partial(SqliteEvents, cache=publish_contexts))
        super().__init__(engine, Notifier(), repositories.unit, wakeup_precedes_visibility=False)
        self.writer = Writer(engine, repositories.unit)

    @property
    def serialises_writes(self) -> bool:
        return True

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlUnitOfWork]:
        async with self.writer.transaction() as unit:
            yield unit

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlUnitOfWork]:
        # BEGIN with the first statement (a deferred transaction takes its snapshot there
        # anyway), so that a read answered from memory (publish_context.py) runs none.
        async with unavailable_on_failure(), self.engine.connect() as connection:
            await connection.execution_options(**{READ_ONLY: True})
            unit = self._unit(connection)
            yield unit
            if connection.in_transaction():
                await connection.commit()
        unit.committed()

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
    publish_contexts = shared_cache(url)
    _configure(engine, publish_contexts)
    return SqliteStorage(engine, publish_contexts)


REPOSITORIES = DriverRepositories(
    events=SqliteEvents,
    deliveries=SqliteDeliveries,
    subscriptions=SqliteSubscriptions,
    feed=SqliteFeed,
    retention=SqliteRetention,
    insert=sqlite.insert,
)


def _configure(engine: AsyncEngine, publish_contexts: PublishContextCache) -> None:
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
        publish_contexts.watch(dbapi_connection)

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Write transactions take the write lock up front, so check-then-insert rules like
        # the subscription limit hold under concurrency; read-only ones skip it.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        if not read_only:
            _watch_publish_context(connection.connection)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    @event.listens_for(sync_engine, "checkin")
    @event.listens_for(sync_engine, "close")
    @event.listens_for(sync_engine, "invalidate")
    def _on_settled(dbapi_connection: Any, *_: Any) -> None:
        # Its transaction, if any, has ended: what it changed is committed or gone.
        publish_contexts.settled(dbapi_connection)


def _watch_publish_context(connection: PoolProxiedConnection) -> None:
    """Before the first write transaction of `connection`: its triggers (publish_context.py).
    Created outside a transaction, so that a rollback does not take them away."""
    if connection.info.get(TRIGGERS_INSTALLED):
        return
    cursor = connection.cursor()
    try:
        connection.info[TRIGGERS_INSTALLED] = install_triggers(cursor, TRIGGERS)
    finally:
        cursor.close()


TRIGGERS_INSTALLED = "webhook_grpc_publish_context_triggers"
