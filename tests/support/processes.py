"""Real `webhook-grpc` processes for scale-out and crash tests."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping

from tests.support.server import TEST_SETTINGS


def settings_env(database_url: str, **overrides: object) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in {**TEST_SETTINGS, "database_url": database_url, **overrides}.items():
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if isinstance(value, bool):
            value = "true" if value else "false"
        env[f"WEBHOOK_GRPC_{name.upper()}"] = str(value)
    return env


class ServiceProcess:
    """`webhook-grpc <command>` in a subprocess; stopped (SIGKILL if need be) by `close`."""

    def __init__(self, command: str, env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webhook_grpc", command],
            env=dict(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 20) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log(self) -> str:
        """What the process wrote to stderr (after it has exited)."""
        return self.process.stderr.read().decode() if self.process.stderr else ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        if self.process.stderr:
            self.process.stderr.close()


class LoggingProcess:
    """`webhook-grpc <command>` as an asyncio subprocess whose output is read as it comes, so
    that a test can wait for a line (the port a server listens on: start it with listen
    `127.0.0.1:0`), signal it, and check everything it wrote. The test's receiver and servers
    keep running on the same event loop meanwhile."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = asyncio.Condition()
        assert process.stdout is not None and process.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(process.stdout, self.stdout)),
            asyncio.create_task(self._read(process.stderr, self.stderr)),
        ]

    @classmethod
    async def start(cls, command: str, env: Mapping[str, str]) -> LoggingProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "webhook_grpc",
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
        )
        return cls(process)

    async def _read(self, stream: asyncio.StreamReader, lines: list[str]) -> None:
        while line := await stream.readline():
            async with self._changed:
                lines.append(line.decode().rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_line(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first stderr line matching `pattern`; fails if the process exits without one."""

        def found() -> re.Match[str] | None:
            return next(filter(None, (re.search(pattern, line) for line in self.stderr)), None)

        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: found() is not None or self._ended()), timeout
            )
        match = found()
        assert match is not None, f"exited without logging {pattern!r}:\n" + "\n".join(self.stderr)
        return match

    async def port(self) -> int:
        """The gRPC port a `serve` process listens on (from its start-up log line)."""
        return int((await self.wait_for_line(r"listening on [^ \"]+:(\d+)")).group(1))

    def _ended(self) -> bool:
        return all(reader.done() for reader in self._readers)

    async def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the exit (and the last of its output); the exit code."""
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await asyncio.wait_for(asyncio.gather(*self._readers), timeout)
        return code

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
