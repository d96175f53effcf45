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
    peer_port: int = 0  # the sender's side of the connection
    status: int = 200  # the status it is answered with


@dataclass
class Behaviour:
    """How one path answers: a status (or a list consumed in order), delay, extra headers.

    With `hold`, requests get no answer until that event is set: attempts stay in flight for as
    long as a test needs, however slow the machine."""

    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    hold: asyncio.Event | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"

    def next_status(self) -> int:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        # Received and not answered yet.
        self.unanswered: list[Received] = []
        # Requests answered; one whose sender gave up first (a timeout) is never answered.
        self.answered: list[Received] = []
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
        for behaviour in self.behaviours.values():
            if behaviour.hold is not None:
                behaviour.hold.set()  # held requests would keep the server from stopping
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
        peer = request.transport.get_extra_info("peername") if request.transport else None
        received = Received(
            request.path,
            dict(request.headers),
            body,
            asyncio.get_running_loop().time(),
            peer[1] if peer else 0,
            status,
        )
        async with self._arrived:
            self.received.append(received)
            self.unanswered.append(received)
            self._arrived.notify_all()
        try:
            if behaviour.delay:
                await asyncio.sleep(behaviour.delay)
            if behaviour.hold is not None:
                await behaviour.hold.wait()
        finally:
            self.unanswered.remove(received)
        self.answered.append(received)
        return web.Response(status=status, body=behaviour.body, headers=behaviour.headers)
