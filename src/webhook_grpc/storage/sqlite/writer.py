"""One writer with group commit: every write transaction of this storage runs on one connection,
one after another, several in one SQLite transaction.

SQLite has one writer at a time. With a write transaction per connection, concurrent callers
waited in SQLite's busy handler, which polls the lock with sleeps that grow to 100 ms: at 16
concurrent publishers a BEGIN IMMEDIATE waited 1.4 s at p99 while the lock was free most of that
time (docs/PERFORMANCE.md, SQLite). Here callers queue instead: the writer task opens one
transaction (BEGIN IMMEDIATE), hands its connection to each queued caller in turn inside a
SAVEPOINT of its own, and commits once the queue is empty (or `max_batch` callers have run).

* Nothing is acknowledged before COMMIT: a caller's block returns once the transaction holding
  its work has committed, and its on-commit hooks run then.
* A caller whose block raises is rolled back to its savepoint and gets its error; the others of
  the batch commit. If COMMIT itself fails, every caller of the batch gets the error.
* Callers run in arrival order on one connection, so rowid order is still commit order (the
  feed's order), and check-then-insert rules still see every earlier caller's writes.
* A transaction opened from inside a caller's block (the same task) runs as a nested savepoint
  on the caller's connection instead of queueing behind itself."""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..common.engine import unavailable_on_failure
from ..common.unit_of_work import SqlUnitOfWork
from .connection import StopOnce

MAX_BATCH = 64

# Each caller's block runs in this savepoint: opened, released for the next caller, or rolled
# back to (and so still open) for the next caller.
_FIRST = ("SAVEPOINT caller",)
_NEXT = ("RELEASE caller", "SAVEPOINT caller")
_UNDO = ("ROLLBACK TO caller",)


@dataclass(eq=False)
class _Turn:
    """One caller's place in the queue: the connection is handed over through `granted`, the
    caller reports its block's outcome through `finished`, the writer the commit through
    `committed`."""

    granted: asyncio.Future[AsyncConnection]
    finished: asyncio.Future[BaseException | None]
    committed: asyncio.Future[None]


# The connection and unit of work of the caller whose block runs in this context, if any.
_current: contextvars.ContextVar[tuple[AsyncConnection, SqlUnitOfWork] | None] = (
    contextvars.ContextVar("webhook_grpc_sqlite_writer", default=None)
)


class Writer:
    """The queue and the task that runs it; started on first use in the running event loop."""

    def __init__(
        self,
        engine: AsyncEngine,
        unit: Callable[[AsyncConnection], SqlUnitOfWork],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._engine = engine
        self._unit = unit
        self._max_batch = max_batch
        self._queue: deque[_Turn] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        """Transactions committed so far (each holding one or more callers' work)."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlUnitOfWork]:
        outer = _current.get()
        if outer is not None:
            async with self._nested(*outer) as unit:
                yield unit
            return
        turn = self._enqueue()
        try:
            async with unavailable_on_failure():
                connection = await turn.granted
        except BaseException:
            if turn.granted.done() and not turn.granted.cancelled():
                # Granted just as the caller was cancelled: give the turn back unused.
                turn.finished.set_result(None)
            turn.granted.cancel()
            raise
        unit = self._unit(connection)
        token = _current.set((connection, unit))
        try:
            async with unavailable_on_failure():
                yield unit
        except BaseException as error:
            turn.finished.set_result(error)
            raise
        finally:
            _current.reset(token)
        turn.finished.set_result(None)
        async with unavailable_on_failure():
            await turn.committed
        unit.committed()

    @asynccontextmanager
    async def _nested(
        self, connection: AsyncConnection, outer: SqlUnitOfWork
    ) -> AsyncIterator[SqlUnitOfWork]:
        async with unavailable_on_failure(), connection.begin_nested():
            unit = self._unit(connection)
            yield unit
        # The outer block's commit is this one's: its hooks run once that has committed.
        outer.on_commit(unit.committed)

    def _enqueue(self) -> _Turn:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._queue = deque()
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="sqlite-writer")
        turn = _Turn(loop.create_future(), loop.create_future(), loop.create_future())
        self._queue.append(turn)
        self._wake.set()
        return turn

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            await self._batch()

    def _next(self) -> _Turn | None:
        while self._queue:
            turn = self._queue.popleft()
            if not turn.granted.cancelled():
                return turn
        return None

    async def _batch(self) -> None:
        """Run queued callers in one transaction until the queue is empty or the batch full."""
        turn = self._next()
        if turn is None:
            return
        ran: list[_Turn] = []
        try:
            async with self._engine.connect() as connection:
                await connection.begin()
                driver = (await connection.get_raw_connection()).driver_connection
                assert isinstance(driver, StopOnce)
                # The savepoints go to the driver in one call from one caller to the next
                # (SQLAlchemy's took two statements, each with its own bookkeeping), queued
                # ahead of the caller's statements rather than waited for: the thread runs its
                # queue in order, and their outcome is checked before the caller's work counts.
                # A savepoint rolled back to stays open: the next caller's. COMMIT releases the
                # last one.
                step: tuple[str, ...] = _FIRST
                while turn is not None:
                    opened = driver.submit_each(step)
                    turn.granted.set_result(connection)
                    outcome = await asyncio.shield(turn.finished)
                    await opened
                    if outcome is None:
                        ran.append(turn)
                        step = _NEXT
                    else:
                        step = _UNDO
                    turn = self._next() if len(ran) < self._max_batch else None
                if step is _UNDO:
                    await driver.execute_each(_UNDO)
                await connection.commit()
        except BaseException as error:
            for waiting in [*ran, *([turn] if turn is not None else [])]:
                _fail(waiting, error)
            if isinstance(error, asyncio.CancelledError):
                for waiting in self._queue:
                    _fail(waiting, error)
                raise
            return
        self.batches += 1
        for done in ran:
            if not done.committed.done():
                done.committed.set_result(None)


def _fail(turn: _Turn, error: BaseException) -> None:
    """Fail what `turn`'s caller waits for: its turn, or the commit of its finished block
    (not that of a block that failed by itself: its caller has its own error already)."""
    waiting: list[asyncio.Future[Any]] = [turn.granted]
    if turn.finished.done() and turn.finished.result() is None:
        waiting.append(turn.committed)
    for future in waiting:
        if future.done():
            continue
        if isinstance(error, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(error)
