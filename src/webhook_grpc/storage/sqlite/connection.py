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

Its cursors also run a whole statement in one trip to the worker thread (`OneTripCursor`),
where aiosqlite's take three or four.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from functools import partial
from typing import Any, Self

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


# What one statement brought back from the worker thread: description, rows, rowcount,
# lastrowid.
_Outcome = tuple[Any, list[Any], int, int | None]
_Run = Callable[[sqlite3.Connection, str, Any], _Outcome]


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

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    async def statement(self, run: _Run, sql: str, parameters: Any) -> _Outcome:
        """`run(connection, sql, parameters)` on the worker thread."""
        outcome: _Outcome = await self._execute(run, self._conn, sql, parameters)  # type: ignore[no-untyped-call]
        return outcome

    async def execute_each(self, statements: Sequence[str]) -> None:
        """`statements` (without parameters or rows) in one trip to the worker thread."""
        await self.submit_each(statements)

    def submit_each(self, statements: Sequence[str]) -> asyncio.Future[None]:
        """Queue `statements` for the worker thread without waiting: whatever is queued next
        runs after them (the thread takes its queue in order). The future tells how they went;
        await it."""
        if not self._running:  # as aiosqlite's own calls: nothing would answer
            raise ValueError("Connection closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tx.put_nowait((future, partial(_run_each, self._conn, statements)))
        return future

    async def close(self) -> None:
        if self._stopped is None:
            await super().close()
            return
        # Already stopping: the worker closes the connection on its way out.
        waiter = self.stop()
        if waiter is not None:
            await waiter


class OneTripCursor:
    """What SQLAlchemy's aiosqlite adapter asks of a cursor, in one trip to the connection's
    worker thread per statement.

    Through aiosqlite's own cursor a statement costs a trip each to open the cursor, execute,
    fetch the rows and close it: each trip a queue hand-off, a thread wake-up and an event
    loop wake-up, 30 µs or more of CPU. Here the thread executes, fetches every row and closes
    the sqlite3 cursor at once (the adapter fetches every row anyway), and the rest is answered
    from what it brought back. The sqlite3 cursor never outlives its statement, so a cancelled
    caller leaves no unfinished statement behind either."""

    arraysize = 1

    def __init__(self, connection: StopOnce) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: deque[Any] = deque()

    def __await__(self) -> Any:
        return self.__aenter__().__await__()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> Self:
        self._take(await self._connection.statement(_run, sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Self:
        self._take(await self._connection.statement(_run_many, sql, parameters))
        return self

    def _take(self, outcome: _Outcome) -> None:
        self.description, rows, self.rowcount, self.lastrowid = outcome
        self._rows = deque(rows)

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = min(self.arraysize if size is None else size, len(self._rows))
        return [self._rows.popleft() for _ in range(count)]

    async def fetchall(self) -> list[Any]:
        rows, self._rows = list(self._rows), deque()
        return rows

    async def close(self) -> None:
        self._rows.clear()

    async def __aiter__(self) -> AsyncIterator[Any]:
        while self._rows:
            yield self._rows.popleft()


def _run(connection: sqlite3.Connection, sql: str, parameters: Any) -> _Outcome:
    """On the worker thread: one statement, its rows, and the cursor closed."""
    cursor = connection.cursor()
    try:
        cursor.execute(sql, () if parameters is None else parameters)
        return _outcome(cursor)
    finally:
        cursor.close()


def _run_many(
    connection: sqlite3.Connection, sql: str, parameters: Iterable[Sequence[Any]]
) -> _Outcome:
    cursor = connection.cursor()
    try:
        cursor.executemany(sql, parameters)
        return _outcome(cursor)
    finally:
        cursor.close()


def _run_each(connection: sqlite3.Connection, statements: Sequence[str]) -> None:
    for statement in statements:
        connection.execute(statement).close()


def _outcome(cursor: sqlite3.Cursor) -> _Outcome:
    description = cursor.description
    rows = cursor.fetchall() if description else []
    return description, rows, cursor.rowcount, cursor.lastrowid
