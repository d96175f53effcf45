"""GET /api/v1/webhooks/events/stream: StreamEvents as Server-Sent Events (SPEC §9)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.conftest import ServerFactory
from tests.support.factories import publish, publish_events
from tests.support.server import RunningServer
from tests.support.sse import EventStream
from tests.support.tokens import ACME_TOKEN, GLOBEX_TOKEN, TOKENS
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as pb
from webhook_grpc.app import Roles

STREAM = "/api/v1/webhooks/events/stream"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@asynccontextmanager
async def stream(
    session: aiohttp.ClientSession,
    server: RunningServer,
    *,
    token: str | None = None,
    last_event_id: str = "",
    params: Any = None,
) -> AsyncIterator[EventStream]:
    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    async with session.get(
        server.http + STREAM, headers=headers, params=params or {"tenant_id": "acme"}
    ) as response:
        yield EventStream(response)


async def test_backlog_then_live_events_as_sse_frames(
    server: RunningServer, session: aiohttp.ClientSession
) -> None:
    backlog = await publish_events(server, 3)
    async with stream(session, server) as events:
        assert events.response.status == 200
        assert events.response.headers["Content-Type"].startswith("text/event-stream")
        frames = await events.events(3)
        live = await publish(server, entity_id="live")
        frames += await events.events(1)
    assert [f.id for f in frames] == [e.cursor for e in [*backlog, live]]
    assert {f.event for f in frames} == {"product.created"}
    assert [f.json["id"] for f in frames] == [e.id for e in [*backlog, live]]
    assert frames[-1].json["entity_id"] == "live"
    assert frames[-1].json["tenant_id"] == "acme"


async def test_idle_heartbeats_are_comments_with_the_cursor(
    make_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await make_server(feed_heartbeat="50ms")
    [event] = await publish_events(server, 1)
    async with stream(session, server) as events:
        await events.events(1)
        frame = await events.next()
        while frame is not None and not (frame.comment or "").startswith("heartbeat"):
            frame = await events.next()
    assert frame is not None and frame.comment == f"heartbeat {event.cursor}"


async def test_resume_with_last_event_id_across_a_server_restart_without_gap_or_duplicate(
    make_server: ServerFactory, session: aiohttp.ClientSession, database_url: str
) -> None:
    first = await make_server()
    published = await publish_events(first, 5)
    async with stream(session, first) as events:
        received = await events.events(5)
        # The server goes away under an open stream: the stream ends, as a restart ends it.
        await first.stop()
        while await events.next() is not None:
            pass
        last_event_id = events.last_event_id
    second = await make_server(database_url=database_url)
    published += await publish_events(second, 4)
    # As EventSource reconnects: the same request with the last id it saw.
    async with stream(session, second, last_event_id=last_event_id) as events:
        received += await events.events(4)
        live = await publish(second, entity_id="after-restart")
        received += await events.events(1)
    assert [f.json["id"] for f in received] == [e.id for e in [*published, live]]
    # The query's after_cursor wins over Last-Event-ID.
    async with stream(
        session,
        second,
        last_event_id=last_event_id,
        params={"tenant_id": "acme", "after_cursor": published[7].cursor},
    ) as events:
        rest = await events.events(2)
    assert [f.json["id"] for f in rest] == [published[8].id, live.id]


async def test_filters_from_repeated_query_parameters(
    server: RunningServer, session: aiohttp.ClientSession
) -> None:
    await publish(server, "product.created", entity_id="p1")
    customer = await publish(server, "customer.created", entity_id="c1")
    async with stream(
        session,
        server,
        params=[("tenant_id", "acme"), ("event_patterns", "customer.*")],
    ) as events:
        [frame] = await events.events(1)
    assert frame.event == "customer.created"
    assert frame.id == customer.cursor


async def test_an_expired_cursor_is_an_error_event_then_the_end(
    make_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    now = [datetime.now(UTC) - timedelta(days=40)]
    server = await make_server(
        clock=lambda: now[0], retention_days=30, roles=Roles(retention=False)
    )
    old = await publish(server, entity_id="old")
    await publish(server, entity_id="old2")
    now[0] = datetime.now(UTC)
    await publish(server, entity_id="fresh")
    assert await server.app.retention.purge() == 2
    async with stream(session, server, last_event_id=old.cursor) as events:
        assert events.response.status == 200
        frames = []
        while (frame := await events.next()) is not None:
            frames.append(frame)
    [error] = [f for f in frames if f.comment is None]
    assert error.event == "error"
    assert error.json["code"] == 11  # OUT_OF_RANGE
    assert "purged" in error.json["message"]


async def test_refusals_before_the_stream_starts_are_http_statuses(
    make_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await make_server(tokens=TOKENS, max_streams_per_tenant=1)
    async with stream(session, server) as anonymous:
        assert anonymous.response.status == 401
        assert (await anonymous.response.json())["code"] == 16
    async with stream(
        session, server, token=GLOBEX_TOKEN, params={"tenant_id": "acme"}
    ) as other_tenant:
        assert other_tenant.response.status == 403
    async with stream(session, server, token=ACME_TOKEN, params={"bogus": "1"}) as unknown:
        assert unknown.response.status == 400
    # The same stream limits as gRPC: one open stream per tenant here.
    async with stream(session, server, token=ACME_TOKEN, params={}) as held:
        assert held.response.status == 200
        await held.next()
        async with stream(session, server, token=ACME_TOKEN, params={}) as refused:
            assert refused.response.status == 429
            assert (await refused.response.json())["code"] == 8


async def test_sse_and_grpc_streams_share_the_stream_limits(
    make_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await make_server(max_streams_per_tenant=1)
    call = server.feed.StreamEvents(pb.StreamEventsRequest(tenant_id="acme"))
    await publish(server)
    await asyncio.wait_for(call.read(), 10)  # the gRPC stream holds acme's one slot
    async with stream(session, server) as refused:
        assert refused.response.status == 429
        assert (await refused.response.json())["code"] == 8
    async with stream(session, server, params={"tenant_id": "globex"}) as other:
        assert other.response.status == 200
    call.cancel()


async def test_a_client_that_leaves_frees_its_stream_slot_at_once(
    make_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    # The heartbeat, the next write that could notice, is far away: the slot must be freed by
    # the disconnect itself, as a cancelled gRPC call frees it, or a reconnecting EventSource
    # would be refused.
    server = await make_server(max_streams_per_tenant=1, feed_heartbeat="60s")
    async with stream(session, server) as first:
        assert first.response.status == 200
        await first.next()
        first.response.close()
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        async with stream(session, server) as again:
            if again.response.status == 200:
                break
            assert again.response.status == 429
        assert asyncio.get_running_loop().time() < deadline, "the slot was never freed"
        await asyncio.sleep(0.05)
