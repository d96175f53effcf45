"""PostgreSQL only: the feed's visibility horizon is this database's oldest open write
transaction, not the whole server's (docs/FEED_ORDERING.md).

A write transaction left open in another database of the same server (another application, a
CREATE DATABASE) must not hold this feed back; one open in this database must, because it may
still commit an event below everything published after it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from tests.support.databases import ADMIN_URL
from tests.support.factories import publish
from tests.support.server import RunningServer, start_server
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb

pytestmark = pytest.mark.postgres


def _open_write_transaction(url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(url, connect_timeout=3) as conn:
        conn.execute("SELECT pg_current_xact_id()")  # takes a transaction id, as a write does
        yield conn
        conn.rollback()


@pytest.fixture
async def server(postgres_url: str) -> AsyncIterator[RunningServer]:
    running = await start_server(postgres_url)
    yield running
    await running.stop()


@pytest.fixture
def other_database_transaction(postgres_url: str) -> Iterator[psycopg.Connection]:
    yield from _open_write_transaction(ADMIN_URL)


async def _feed_ids(server: RunningServer, **request: object) -> list[str]:
    page = await server.feed.ListEvents(fpb.ListEventsRequest(tenant_id="acme", **request))
    return [event.id for event in page.events]


async def test_a_transaction_open_in_another_database_does_not_hold_the_feed_back(
    server: RunningServer, other_database_transaction: psycopg.Connection
) -> None:
    published = await publish(server, entity_id="p1")
    assert await _feed_ids(server) == [published.id]
    # A stream from the latest position starts after it, not before.
    call = server.feed.StreamEvents(fpb.StreamEventsRequest(tenant_id="acme", from_latest=True))
    first = await call.read()
    call.cancel()
    assert first.HasField("heartbeat") and not first.events
    after = await server.feed.ListEvents(
        fpb.ListEventsRequest(tenant_id="acme", after_cursor=first.cursor)
    )
    assert list(after.events) == []


async def test_a_transaction_open_in_this_database_holds_the_feed_back(
    server: RunningServer, postgres_url: str
) -> None:
    before = await publish(server, entity_id="p1")
    transaction = _open_write_transaction(postgres_url)
    next(transaction)
    try:
        later = await publish(server, entity_id="p2")
        # The open transaction could still commit an event that sorts before `later`.
        assert await _feed_ids(server) == [before.id]
    finally:
        next(transaction, None)
    assert await _feed_ids(server) == [before.id, later.id]
