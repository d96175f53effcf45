"""Running a command's coroutine so that Ctrl-C always ends it and its clean-up cannot hang.

`asyncio.run` handles Ctrl-C with a plain `signal.signal` handler: the loop only notices it when
something else wakes it, and it then waits for every remaining task without a bound. A client
command idling on a quiet stream, or a gRPC channel whose teardown stalls, can then outlive the
user's Ctrl-C. Here the signal goes through the loop's own handler (its wake-up descriptor makes
`epoll` return at once, whichever thread the kernel delivered the signal to), and the tasks left
after the command, with the clean-up their cancellation starts, get `margin` seconds to end
before the loop closes without them."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger("webhook_grpc")

T = TypeVar("T")


class Interrupted(Exception):
    """The command was cancelled by one of the signals it was run with."""


def run(
    main: Coroutine[Any, Any, T],
    *,
    margin: float,
    interrupt_on: tuple[signal.Signals, ...] = (),
) -> T:
    """Run `main` to completion on a new loop; each signal of `interrupt_on` cancels it and
    raises `Interrupted` here. A second Ctrl-C during the clean-up raises KeyboardInterrupt."""
    loop = asyncio.new_event_loop()
    task = loop.create_task(main)
    signalled: list[signal.Signals] = []

    def interrupt(sig: signal.Signals) -> None:
        signalled.append(sig)
        task.cancel()

    for sig in interrupt_on:
        loop.add_signal_handler(sig, interrupt, sig)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if signalled:
            raise Interrupted(signalled[0].name) from None
        raise
    finally:
        for sig in interrupt_on:
            loop.remove_signal_handler(sig)
        try:
            loop.run_until_complete(_cancel_remaining(margin))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


async def _cancel_remaining(margin: float) -> None:
    """Cancel the tasks left, then give them `margin` seconds in all to end, and the tasks
    that their cancellation starts too: those are clean-up (SQLAlchemy closes a cancelled
    query's connection in a task of its own), which a closing loop would cut short."""
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    for task in asyncio.all_tasks() - {current}:
        task.cancel()
    deadline = loop.time() + margin
    while pending := asyncio.all_tasks() - {current}:
        if (timeout := deadline - loop.time()) <= 0:
            break
        await asyncio.wait(pending, timeout=timeout)
    else:
        return
    log.error(
        "%d tasks did not end when cancelled; exiting without them: %s",
        len(pending),
        ", ".join(sorted(task.get_name() for task in pending)),
    )
