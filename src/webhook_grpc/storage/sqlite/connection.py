"""The aiosqlite connection SQLAlchemy gets: one that a cancelled task cannot leave half-closed.

When a task is cancelled during a query, SQLAlchemy discards ("terminates") its connection:
it closes it gracefully in a shielded task and, if the task waiting for that is cancelled
too, force-stops it. Two things went wrong there with plain aiosqlite 0.22:

- The cancelled query's cursor still holds an unfinished statement, so sqlite3's close only
  makes the connection a "zombie", closed once that cursor is garbage-collected; until then
  its transaction stays open and, after BEGIN IMMEDIATE, keeps the write lock. Every other
  connection then waits out busy_timeout in BEGIN IMMEDIATE, each one's own close queued
  behind it. Rolling back first ends the transaction whatever the close does.
- After a forced stop, the graceful close still running queues a second stop behind the
  worker thread's exit, and awaits for ever a future nothing resolves: a task left pending,
  which shutdown reports and the event loop's teardown can wait on. Here the thread is
  stopped once, and every later close or stop waits for that one.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from functools import partial
from typing import Any

import aiosqlite


class RollbackOnClose(sqlite3.Connection):
    """A sqlite3 connection that ends its transaction before it closes (see the module)."""

    def close(self) -> None:
        # Closed already (aiosqlite may close twice: close() and then its stop()), or the
        # rollback failed: close all the same. Raising here would also keep aiosqlite's
        # worker thread from ever ending, when its stop() is what closes.
        with contextlib.suppress(sqlite3.Error):
            self.rollback()
        super().close()


class StopOnce(aiosqlite.Connection):
    """An aiosqlite connection whose worker thread is stopped once (see the module)."""

    def __init__(self, database: str, **options: Any) -> None:
        super().__init__(
            partial(sqlite3.connect, database, factory=RollbackOnClose, **options),
            iter_chunk_size=64,
        )
        # As SQLAlchemy does for the connections it opens itself: a connection it never
        # closes does not keep the process alive.
        self._thread.daemon = True
        self._stopped: asyncio.Future[Any] | None = None

    def stop(self) -> asyncio.Future[Any] | None:
        if self._stopped is None:
            self._stopped = super().stop()
        if self._stopped is None or self._stopped.done():
            return None
        # Each caller waits on a future of its own, so that a caller cancelled while waiting
        # does not cancel the one the worker thread resolves, which the others wait for.
        waiter = self._stopped.get_loop().create_future()

        def stopped(_: asyncio.Future[Any]) -> None:
            if not waiter.done():
                waiter.set_result(None)

        self._stopped.add_done_callback(stopped)
        return waiter

    async def close(self) -> None:
        if self._stopped is None:
            await super().close()
            return
        # Already stopping: the worker closes the connection on its way out.
        waiter = self.stop()
        if waiter is not None:
            await waiter
