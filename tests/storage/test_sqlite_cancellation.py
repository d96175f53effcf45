"""A task cancelled in the middle of a SQLite query leaves nothing behind: not the write lock,
and no task of the connection's clean-up left pending for ever (SQLAlchemy terminates the
connection of a cancelled query; see storage/sqlite/connection.py)."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from webhook_grpc.storage.sqlite.storage import SqliteStorage

# One row, once gate() lets it: the statement is then still open (sqlite3 has stepped it to
# its first row only) when the cancelled task's connection is closed.
GATED_QUERY = "SELECT gate()"


@pytest.fixture
def no_garbage_collection() -> Iterator[None]:
    """What the cancelled query left for the garbage collector stays there: the test sees
    the state a busy server is in until a collection happens to run."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
async def gate() -> AsyncIterator[Gate]:
    opened = Gate()
    yield opened
    opened.open.set()  # whatever the test did: its query must not keep the worker thread


class Gate:
    """gate() in SQL: tells the test the query runs, then waits until the test opens it."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.open = threading.Event()
        self._loop = asyncio.get_running_loop()

    def __call__(self) -> int:
        self._loop.call_soon_threadsafe(self.entered.set)
        self.open.wait()
        return 1


async def gated_query_in_a_write_transaction(
    engine: AsyncEngine, gate: Gate, connections: list[Any]
) -> None:
    async with engine.begin() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        connections.append(driver)
        await driver.create_function("gate", 0, gate)
        await connection.execute(text(GATED_QUERY))


def write_lock_is_free(database: Path) -> bool:
    probe = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()
    return True


@pytest.mark.usefixtures("no_garbage_collection")
async def test_a_write_transaction_cancelled_mid_query_releases_the_write_lock(
    sqlite_storage: SqliteStorage, sqlite_file: Path, gate: Gate
) -> None:
    task = asyncio.create_task(gated_query_in_a_write_transaction(sqlite_storage.engine, gate, []))
    await gate.entered.wait()
    task.cancel()
    gate.open.set()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert write_lock_is_free(sqlite_file)
    async with sqlite_storage.transaction() as unit:
        assert await unit.state.get("anything") is None


async def test_a_query_cancelled_again_while_its_connection_closes_leaves_no_task_pending(
    sqlite_storage: SqliteStorage, gate: Gate
) -> None:
    connections: list[Any] = []
    task = asyncio.create_task(
        gated_query_in_a_write_transaction(sqlite_storage.engine, gate, connections)
    )
    await gate.entered.wait()
    before = asyncio.all_tasks()
    # The first cancellation makes SQLAlchemy close the connection in a task of its own,
    # which waits behind the query; the second one, while it waits, makes it force the close.
    task.cancel()
    closing = await started_besides(before | {task})
    task.cancel()
    gate.open.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(connections[0]._thread.join)  # the worker thread has ended

    # Its last results reach the loop within a few turns of it.
    for _ in range(10):
        await asyncio.sleep(0)
    assert all(started.done() for started in closing), closing
    async with sqlite_storage.transaction() as unit:
        assert await unit.state.get("anything") is None


async def started_besides(known: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """The tasks started since `known` were, as soon as there are any. Nothing to wait on:
    SQLAlchemy starts them; each turn of the loop looks again."""
    for _ in range(1000):
        if started := asyncio.all_tasks() - known:
            return started
        await asyncio.sleep(0)
    raise AssertionError("no task started")
