"""A real HTTP endpoint on loopback that records what it receives and answers as told."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Behaviour:
    """How one path answers: a status (or a list consumed in order), delay, extra headers."""

    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"

    def next_status(self) -> int:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.behaviours: dict[str, Behaviour] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._arrived = asyncio.Condition()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str, **behaviour: object) -> Behaviour:
        self.behaviours[path] = Behaviour(**behaviour)  # type: ignore[arg-type]
        return self.behaviours[path]

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A handler still delaying its answer is cancelled when its client gives up (a timed-out
        # or stopped dispatcher), so `stop` does not wait out an endpoint that hangs for minutes.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0
    ) -> list[Received]:
        """Wait until `predicate(received)` holds; fail the test after `timeout` seconds."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: predicate(self.received)), timeout
            )
        return self.received

    async def wait_count(self, count: int, path: str | None = None, timeout: float = 10.0) -> None:
        await self.wait_for(
            lambda got: len([r for r in got if path is None or r.path == path]) >= count, timeout
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        behaviour = self.behaviours.get(request.path, Behaviour())
        status = behaviour.next_status()
        async with self._arrived:
            self.received.append(
                Received(
                    request.path, dict(request.headers), body, asyncio.get_running_loop().time()
                )
            )
            self._arrived.notify_all()
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        return web.Response(status=status, body=behaviour.body, headers=behaviour.headers)
