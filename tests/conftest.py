"""Shared fixtures: real databases (SQLite and PostgreSQL), a real server, a real receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from tests.support.databases import PostgresDatabase, unavailable
from tests.support.fault_proxy import FaultProxy
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, start_server
from webhook_grpc.app import Roles


@pytest.fixture(scope="session", autouse=True)
def grpc_aio_runtime() -> None:
    """Keep gRPC's asyncio runtime up for the whole run. By default it is torn down whenever
    the last channel and server are collected, which here is after nearly every test (each has
    its own event loop), and that teardown can hang for good: it joins gRPC's poller thread,
    which may be blocked writing a wake-up byte to a socket no loop reads any more
    (grpc/grpc#40989). Held from the main thread, the runtime serves every loop in turn."""
    grpc.aio.init_grpc_aio()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresDatabase]:
    database = PostgresDatabase()
    try:
        database.create()
    except psycopg.OperationalError as error:
        unavailable(str(error).strip())
    yield database
    database.drop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'webhooks.db'}"
    database: PostgresDatabase = request.getfixturevalue("postgres_database")
    database.truncate()
    return database.url


@pytest.fixture
def postgres_url(postgres_database: PostgresDatabase) -> str:
    """For PostgreSQL-only tests (scale-out, crash, concurrency proofs)."""
    postgres_database.truncate()
    return postgres_database.url


@pytest.fixture
async def api_only(postgres_url: str) -> AsyncIterator[RunningServer]:
    """A server on PostgreSQL that publishes but does not deliver: dispatchers run as separate
    processes (scale-out tests)."""
    server = await start_server(postgres_url, roles=Roles(dispatcher=False, retention=False))
    yield server
    await server.stop()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    """A fault proxy in front of the test PostgreSQL server, to cut a server off from it."""
    fault_proxy = FaultProxy()
    await fault_proxy.start()
    yield fault_proxy
    await fault_proxy.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


ServerFactory = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def make_server(database_url: str) -> AsyncIterator[ServerFactory]:
    """Start servers on loopback port 0 against this test's database; stopped afterwards."""
    running: list[RunningServer] = []

    async def start(**overrides: Any) -> RunningServer:
        server = await start_server(overrides.pop("database_url", database_url), **overrides)
        running.append(server)
        return server

    yield start
    for server in reversed(running):
        await server.stop()


@pytest.fixture
async def server(make_server: ServerFactory) -> RunningServer:
    return await make_server()


@pytest.fixture
def channel(server: RunningServer) -> grpc.aio.Channel:
    return server.channel
