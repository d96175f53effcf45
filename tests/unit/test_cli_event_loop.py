"""`cli/event_loop.run`: Ctrl-C ends an idle command whichever thread the kernel hands the signal
to, and a task that will not end cannot hold the process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from webhook_grpc.cli import event_loop

# A command idling with nothing scheduled (like `feed tail` on a quiet stream), while SIGINT is
# delivered to another thread (as the kernel may do in a process with gRPC's threads).
IDLE_COMMAND_SIGNALLED_ON_ANOTHER_THREAD = textwrap.dedent(
    """
    import asyncio, signal, threading
    from webhook_grpc.cli import event_loop

    started = threading.Event()

    async def idle() -> None:
        asyncio.get_running_loop().call_soon(started.set)
        await asyncio.Event().wait()

    def interrupt_from_this_thread() -> None:
        started.wait()
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    threading.Thread(target=interrupt_from_this_thread, daemon=True).start()
    try:
        event_loop.run(idle(), margin=1, interrupt_on=(signal.SIGINT,))
    except event_loop.Interrupted as interrupted:
        print("interrupted by", interrupted)
    """
)


def test_ctrl_c_on_another_thread_ends_an_idle_command() -> None:
    # asyncio.run would sleep in epoll until something else woke the loop: here, never.
    finished = subprocess.run(
        [sys.executable, "-c", IDLE_COMMAND_SIGNALLED_ON_ANOTHER_THREAD],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "interrupted by SIGINT"


def test_a_task_that_ignores_cancellation_does_not_hold_the_exit() -> None:
    async def main() -> str:
        async def stubborn() -> None:
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    continue

        asyncio.get_running_loop().create_task(stubborn(), name="stubborn")
        return "done"

    assert event_loop.run(main(), margin=0.05) == "done"


def test_the_clean_up_a_cancellation_starts_ends_before_the_loop_closes() -> None:
    cleaned_up: list[str] = []

    async def main() -> str:
        async def clean_up() -> None:
            for _ in range(20):  # turns of the loop, as a close waits on a worker thread
                await asyncio.sleep(0)
            cleaned_up.append("in-flight")

        async def in_flight() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                # As SQLAlchemy does for the connection of a cancelled query: it closes it
                # in a task of its own, which the cancelled task need not wait for.
                asyncio.get_running_loop().create_task(clean_up())
                raise

        asyncio.get_running_loop().create_task(in_flight())
        return "done"

    assert event_loop.run(main(), margin=60) == "done"
    assert cleaned_up == ["in-flight"]


def test_a_cancellation_without_a_signal_is_not_reported_as_an_interrupt() -> None:

    async def main() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        event_loop.run(main(), margin=0.05)
