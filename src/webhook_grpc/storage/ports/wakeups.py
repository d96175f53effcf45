"""Wake-ups: "new work committed, look again". They never carry the work."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Protocol


class Wakeups(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def waiter(self, tenant_id: str | None = None) -> asyncio.Event:
        """An event set on every wake-up for `tenant_id`'s work (on every wake-up when None);
        clear it before checking for work, then wait on it."""
        ...

    def forget(self, event: asyncio.Event) -> None: ...

    def wake(self, tenant_ids: Collection[str] | None = None) -> None:
        """After a commit of work for `tenant_ids` (None: any tenant's): wake this process now,
        and other processes soon after."""
        ...


async def wait_for_wake(event: asyncio.Event, timeout: float) -> bool:
    """Wait until `event` is set (True) or `timeout` seconds pass (False). A cancellation is
    never lost, even one that arrives as the event is set: Python 3.11's asyncio.wait_for can
    return the result then and swallow it, leaving a task that outlives its cancellation."""
    try:
        async with asyncio.timeout(max(timeout, 0.001)):
            await event.wait()
    except TimeoutError:
        return False
    return True
