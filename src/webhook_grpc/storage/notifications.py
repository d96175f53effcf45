"""Wake-ups for the dispatcher and feed streams when new work commits.

A notification only says "look again"; it never carries the work. After a commit, `wake()`
wakes this process's waiters at once and, on PostgreSQL, sends one NOTIFY for every burst of
wake-ups from a connection of its own. The NOTIFY is deliberately not part of the publishing
transaction: PostgreSQL serialises the commits of all transactions that NOTIFY (a cluster-wide
lock held through the commit's WAL flush), which capped publishing at a few hundred events/s.
Without a database URL (SQLite) only the in-process wake-up exists and waiters also poll.
It implements the port's `Wakeups`.

A wake-up may name the tenants whose work committed: then only waiters of those tenants (feed
streams) and waiters of every tenant (dispatchers) wake, here and, through the NOTIFY payload
(a JSON list of tenant ids), in other processes. An empty payload, one too long for NOTIFY, or
one that does not parse wakes every waiter, as a wake-up naming no tenant does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Collection

import psycopg
from sqlalchemy.engine import make_url

CHANNEL = "webhook_grpc"
# NOTIFY payloads must stay below 8,000 bytes; a burst naming more tenants wakes every waiter.
MAX_PAYLOAD = 7_000
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
        # Waiters by the tenant they wait for; None: every wake-up.
        self._waiters: dict[str | None, set[asyncio.Event]] = {}
        self._tenant_of: dict[asyncio.Event, str | None] = {}
        self._announce = asyncio.Event()
        # The tenants the next NOTIFY names; None: every tenant.
        self._unannounced: set[str] | None = set()
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

    def waiter(self, tenant_id: str | None = None) -> asyncio.Event:
        """An event set on every wake-up for `tenant_id`'s work (on every wake-up when None);
        clear it before checking for work, then wait on it."""
        event = asyncio.Event()
        self._waiters.setdefault(tenant_id, set()).add(event)
        self._tenant_of[event] = tenant_id
        return event

    def forget(self, event: asyncio.Event) -> None:
        tenant_id = self._tenant_of.pop(event, None)
        waiters = self._waiters.get(tenant_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[tenant_id]

    def wake(self, tenant_ids: Collection[str] | None = None) -> None:
        """After a commit of work for `tenant_ids` (None: any tenant's): wake this process now,
        and other processes with the next NOTIFY."""
        self._wake_local(tenant_ids)
        if tenant_ids is None or self._unannounced is None:
            self._unannounced = None
        else:
            self._unannounced.update(tenant_ids)
        self._announce.set()

    def _wake_local(self, tenant_ids: Collection[str] | None = None) -> None:
        if tenant_ids is None:
            chosen = list(self._waiters.values())
        else:
            chosen = [self._waiters[t] for t in (None, *tenant_ids) if t in self._waiters]
        for waiters in chosen:
            for event in waiters:
                event.set()

    def _payload(self) -> str:
        """The next NOTIFY's payload, naming the tenants woken since the last one."""
        tenant_ids, self._unannounced = self._unannounced, set()
        if tenant_ids is None:
            return ""
        payload = json.dumps(sorted(tenant_ids))
        return payload if len(payload.encode()) <= MAX_PAYLOAD else ""

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
                        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self._payload()))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("cannot send notifications, retrying: %s", error)
                # The wake-up that failed (the connection died while idle, as in a database
                # outage) goes out on the next connection instead of being lost; its tenants
                # are not known any more, so it wakes every waiter.
                self._unannounced = None
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
                    async for notify in conn.notifies():
                        self._wake_local(_tenants(notify.payload))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("notification listener lost its connection: %s", error)
                self._wake_local()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


def _tenants(payload: str) -> list[str] | None:
    """The tenants a NOTIFY payload names; None (every tenant) if it names none or is not ours
    (an older process sends an empty payload)."""
    try:
        tenant_ids = json.loads(payload) if payload else None
    except ValueError:
        return None
    if isinstance(tenant_ids, list) and all(isinstance(t, str) for t in tenant_ids):
        return tenant_ids
    return None
