"""Wake-ups for the dispatcher and feed streams when new work commits.

A notification only says "look again"; it never carries the work. After a commit, `wake()`
wakes this process's waiters at once and, on PostgreSQL, sends one NOTIFY for every burst of
wake-ups from a connection of its own. The NOTIFY is deliberately not part of the publishing
transaction: PostgreSQL serialises the commits of all transactions that NOTIFY (a cluster-wide
lock held through the commit's WAL flush), which capped publishing at a few hundred events/s.
Without a database URL (SQLite) only the in-process wake-up exists and waiters also poll.
It implements the port's `Wakeups`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from sqlalchemy.engine import make_url

CHANNEL = "webhook_grpc"
log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, database_url: str | None = None) -> None:
        """`database_url` set (PostgreSQL) means: also tell and hear other processes."""
        self._conninfo = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
            if database_url
            else None
        )
        self._waiters: set[asyncio.Event] = set()
        self._announce = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self._conninfo and not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen(), name="notifier-listen"),
                asyncio.create_task(self._announcer(), name="notifier-announce"),
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def waiter(self) -> asyncio.Event:
        """An event set on every wake-up; clear it before checking for work, then wait on it."""
        event = asyncio.Event()
        self._waiters.add(event)
        return event

    def forget(self, event: asyncio.Event) -> None:
        self._waiters.discard(event)

    def wake(self) -> None:
        """After a commit: wake this process now, and other processes with the next NOTIFY."""
        self._wake_local()
        self._announce.set()

    def _wake_local(self) -> None:
        for event in self._waiters:
            event.set()

    async def _announcer(self) -> None:
        assert self._conninfo is not None
        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=3
                ) as conn:
                    delay = 0.1
                    while True:
                        await self._announce.wait()
                        self._announce.clear()
                        await conn.execute(f"NOTIFY {CHANNEL}")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("cannot send notifications, retrying: %s", error)
                # The wake-up that failed (the connection died while idle, as in a database
                # outage) goes out on the next connection instead of being lost.
                self._announce.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _listen(self) -> None:
        assert self._conninfo is not None
        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=3
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.1
                    # Anything committed while we were not listening must be looked at too.
                    self._wake_local()
                    async for _ in conn.notifies():
                        self._wake_local()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("notification listener lost its connection: %s", error)
                self._wake_local()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
