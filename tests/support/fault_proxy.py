"""A TCP proxy in front of PostgreSQL that can simulate an outage, for database-outage tests.

It listens on 127.0.0.1 (port 0: the kernel picks one) and forwards every connection to the real
server. `cut()` drops every open connection and then, for new ones, either refuses them (the
port stops listening, as when the database host is up but PostgreSQL is not) or blackholes them
(they are accepted and never answered, as when the network swallows packets). `restore()` goes
back to forwarding. The real PostgreSQL server is never touched."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

from tests.support.databases import ADMIN_URL

CHUNK = 64 * 1024
_TEST_SERVER = make_url(ADMIN_URL)


class Outage(enum.Enum):
    REFUSE = "refuse"
    """Drop every connection; new ones are refused (the port stops listening)."""
    BLACKHOLE = "blackhole"
    """Drop every connection; new ones are accepted and never answered."""


@dataclass
class FaultProxy:
    # The test PostgreSQL server (WEBHOOK_GRPC_TEST_POSTGRES), whose databases `url` points at.
    upstream_host: str = _TEST_SERVER.host or "127.0.0.1"
    upstream_port: int = _TEST_SERVER.port or 5432
    port: int = 0
    outage: Outage | None = None
    connections: int = 0
    """Connections accepted so far (forwarded or not)."""
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        await self._listen()

    def url(self, database_url: str) -> str:
        """`database_url` (a PostgreSQL URL) pointed at this proxy instead."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    async def cut(self, outage: Outage = Outage.REFUSE) -> None:
        """Start an outage (see `Outage`) that lasts until `restore`."""
        self.outage = outage
        if outage is Outage.REFUSE:
            await self._close_listener()
        self._drop_all()

    async def restore(self) -> None:
        self.outage = None
        self._drop_all()  # blackholed connections: their clients have given up on them anyway
        if self._server is None:
            await self._listen()

    async def stop(self) -> None:
        await self._close_listener()
        self._drop_all()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        # The same port again after a refusing outage, so that clients find the database where
        # they left it.
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        if self.outage is not None:
            return  # blackholed: accepted, held open, never answered
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(CHUNK):
                sink.write(chunk)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.transport.abort()
            self._writers.discard(sink)
