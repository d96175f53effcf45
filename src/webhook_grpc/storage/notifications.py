"""Wake-ups for the dispatcher and feed streams when new work commits.

A notification only says "look again"; it never carries the work. On PostgreSQL a transaction
calls `announce` (pg_notify, delivered at commit to every process); in-process waiters are also
woken directly after commit. On SQLite only the in-process wake-up exists and waiters poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

CHANNEL = "webhook_grpc"
log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, database_url: str | None = None) -> None:
        """`database_url` set (PostgreSQL) means: also listen for other processes' commits."""
        self._database_url = database_url
        self._waiters: set[asyncio.Event] = set()
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._database_url and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="notifier-listen")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    def waiter(self) -> asyncio.Event:
        """An event set on every wake-up; clear it before checking for work, then wait on it."""
        event = asyncio.Event()
        self._waiters.add(event)
        return event

    def forget(self, event: asyncio.Event) -> None:
        self._waiters.discard(event)

    def wake(self) -> None:
        for event in self._waiters:
            event.set()

    @staticmethod
    async def announce(conn: AsyncConnection) -> None:
        """Inside a write transaction: tell every listening process, at commit, to look again."""
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})

    async def _listen(self) -> None:
        assert self._database_url is not None
        url = make_url(self._database_url).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=3
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.1
                    # Anything committed while we were not listening must be looked at too.
                    self.wake()
                    async for _ in conn.notifies():
                        self.wake()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("notification listener lost its connection: %s", error)
                self.wake()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
