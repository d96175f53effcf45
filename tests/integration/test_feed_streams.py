"""StreamEvents under pressure: purges beneath a slow reader, and the caps on open streams."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import ServerFactory
from tests.support.factories import publish_events, publish_request
from tests.support.processes import settings_env
from tests.support.rpc import rpc_error
from tests.support.server import RunningServer
from webhook_grpc._gen.webhooks.v1 import events_pb2, events_pb2_grpc, feed_pb2_grpc
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as pb
from webhook_grpc.app import Roles
from webhook_grpc.cli.server import SHUTDOWN_MARGIN
from webhook_grpc.services.feed import STREAM_BATCH_BYTES

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the RSS from /proc"
)

# Without BDP probing the client's window stays at 64 KiB, so the server can be at most a
# message or two ahead of what the test has read (with it, megabytes).
SMALL_WINDOW = [("grpc.http2.bdp_probe", 0)]


@pytest.mark.parametrize("start", ["earliest", "cursor"])
async def test_a_purge_under_a_slow_stream_ends_it_out_of_range_instead_of_skipping(
    make_server: ServerFactory, start: str
) -> None:
    now = [datetime.now(UTC) - timedelta(days=40)]
    server = await make_server(clock=lambda: now[0], retention_days=30)
    old = await publish_events(server, 2500)
    now[0] = datetime.now(UTC)
    fresh = await publish_events(server, 50)
    after_cursor = old[0].cursor if start == "cursor" else ""
    expected = [e.id for e in (old + fresh)[1 if after_cursor else 0 :]]
    channel = grpc.aio.insecure_channel(server.target, options=SMALL_WINDOW)
    try:
        call = feed_pb2_grpc.FeedServiceStub(channel).StreamEvents(
            pb.StreamEventsRequest(tenant_id="acme", after_cursor=after_cursor)
        )
        first = await asyncio.wait_for(call.read(), 10)
        received = [e.id for e in first.events]
        assert await server.app.retention.purge() == 2500
        error: grpc.aio.AioRpcError | None = None
        try:
            while True:
                message = await asyncio.wait_for(call.read(), 10)
                if message is grpc.aio.EOF or not message.events:
                    break  # caught up (a heartbeat) without an error
                received += [e.id for e in message.events]
        except grpc.aio.AioRpcError as raised:
            error = raised
    finally:
        await channel.close()
    # What arrived is the start of the feed, without a gap, and then the stream said why not more.
    assert received == expected[: len(received)], "the stream skipped purged events"
    assert len(received) < len(old)
    assert error is not None and error.code() == grpc.StatusCode.OUT_OF_RANGE, error
    assert "purged" in (error.details() or "")


async def test_a_stream_from_the_earliest_event_starts_after_past_purges(
    make_server: ServerFactory,
) -> None:
    now = [datetime.now(UTC) - timedelta(days=40)]
    # The test purges by itself: a background purge that starts late (under load) would take the
    # three events, or the purge lock, first.
    server = await make_server(
        clock=lambda: now[0], retention_days=30, roles=Roles(retention=False)
    )
    await publish_events(server, 3)
    assert await server.app.retention.purge() == 0
    now[0] = datetime.now(UTC)
    assert await server.app.retention.purge() == 3
    fresh = await publish_events(server, 2)
    call = server.feed.StreamEvents(pb.StreamEventsRequest(tenant_id="acme"))
    message = await asyncio.wait_for(call.read(), 10)
    assert [e.id for e in message.events] == [e.id for e in fresh]
    call.cancel()


async def open_stream(server: RunningServer, tenant_id: str) -> grpc.aio.UnaryStreamCall:  # type: ignore[type-arg]
    """A stream the server has started: its first message (events or a heartbeat) arrived."""
    call = server.feed.StreamEvents(pb.StreamEventsRequest(tenant_id=tenant_id))
    assert await asyncio.wait_for(call.read(), 10) is not grpc.aio.EOF
    return call


async def test_open_streams_are_capped_per_tenant_and_a_closed_one_frees_its_slot(
    server: RunningServer,
) -> None:
    for tenant in ("acme", "globex"):
        await publish_events(server, 1, tenant_id=tenant)
    calls = [await open_stream(server, "acme") for _ in range(20)]
    refused = await rpc_error(
        server.feed.StreamEvents(pb.StreamEventsRequest(tenant_id="acme")).read(),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert "max_streams_per_tenant" in (refused.details() or "")
    other = await open_stream(server, "globex")
    calls[0].cancel()
    # The slot comes back once the server has seen the cancellation.
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        try:
            calls[0] = await open_stream(server, "acme")
            break
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert asyncio.get_running_loop().time() < deadline, "the slot never came back"
            await asyncio.sleep(0.05)
    for call in [*calls, other]:
        call.cancel()


async def test_open_streams_are_capped_in_all(make_server: ServerFactory) -> None:
    server = await make_server(max_streams=2)
    for tenant in ("acme", "globex", "initech"):
        await publish_events(server, 1, tenant_id=tenant)
    calls = [await open_stream(server, tenant) for tenant in ("acme", "globex")]
    refused = await rpc_error(
        server.feed.StreamEvents(pb.StreamEventsRequest(tenant_id="initech")).read(),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert "max_streams" in (refused.details() or "")
    for call in calls:
        call.cancel()


# A real `serve` process: its memory and its shutdown are what these tests measure.


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@dataclass
class ServeProcess:
    process: asyncio.subprocess.Process
    target: str
    channel: grpc.aio.Channel

    async def publish_backlog(self, count: int, size: int) -> None:
        stub = events_pb2_grpc.EventServiceStub(self.channel)
        for start in range(0, count, 500):
            await stub.PublishEvents(
                events_pb2.PublishEventsRequest(
                    events=[
                        publish_request(entity_id=f"p{i}", data={"id": f"p{i}", "name": "x" * size})
                        for i in range(start, min(count, start + 500))
                    ]
                )
            )

    async def terminate(self, within: float) -> str:
        """SIGTERM; the process must exit with 0 within `within` seconds. Returns its log."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            raise AssertionError(f"serve still running {within}s after SIGTERM") from None
        assert self.process.stderr is not None
        log = (await self.process.stderr.read()).decode()
        assert code == 0, log
        return log


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[ServeProcess]]]:
    started: list[ServeProcess] = []

    async def start(**overrides: object) -> ServeProcess:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        target = f"127.0.0.1:{port}"
        env = settings_env(
            f"sqlite:///{tmp_path / 'serve.db'}", listen=target, log_level="INFO", **overrides
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "webhook_grpc", "serve",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )  # fmt: skip
        served = ServeProcess(process, target, grpc.aio.insecure_channel(target))
        started.append(served)
        health = health_pb2_grpc.HealthStub(served.channel)
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return served
            except grpc.aio.AioRpcError:
                pass
            assert process.returncode is None, "serve exited"
            assert asyncio.get_running_loop().time() < deadline, "serve never became healthy"
            await asyncio.sleep(0.1)

    yield start
    for served in started:
        await served.channel.close()
        if served.process.returncode is None:
            served.process.kill()
            await served.process.wait()


async def open_idle_streams(
    target: str, count: int
) -> tuple[list[grpc.aio.Channel], list[grpc.aio.UnaryStreamCall]]:  # type: ignore[type-arg]
    """`count` streams from the earliest event that read nothing, over a few connections;
    returns once the server has started answering each."""
    channels = [grpc.aio.insecure_channel(target) for _ in range(10)]
    calls = [
        feed_pb2_grpc.FeedServiceStub(channels[i % len(channels)]).StreamEvents(
            pb.StreamEventsRequest(tenant_id="acme")
        )
        for i in range(count)
    ]
    await asyncio.wait_for(asyncio.gather(*(call.initial_metadata() for call in calls)), 60)
    return channels, calls


async def settled_rss(pid: int) -> float:
    """The process's RSS once it has stopped growing (at most about a minute)."""
    samples = [rss_mb(pid)]
    for _ in range(120):
        await asyncio.sleep(0.5)
        samples.append(rss_mb(pid))
        if len(samples) > 8 and max(samples[-8:]) - min(samples[-8:]) < 2:
            break
    return samples[-1]


@linux_only
async def test_streams_that_read_nothing_cost_the_server_a_bounded_amount(
    serve: Callable[..., Awaitable[ServeProcess]],
) -> None:
    served = await serve(max_streams_per_tenant=200, max_streams=200)
    await served.publish_backlog(10_000, 4000)
    before = await settled_rss(served.process.pid)
    channels, _calls = await open_idle_streams(served.target, 150)
    after = await settled_rss(served.process.pid)
    for channel in channels:
        await channel.close()
    # A stream that buffered its backlog would hold 40 MB each (6 GB for 150). A bounded one
    # holds a batch or two of STREAM_BATCH_BYTES as Python objects plus gRPC's send buffers:
    # 55-60 MB for 150 streams on a quiet machine, and up to about twice that on a loaded
    # one, where more streams have their next batch read before the last one is sent.
    per_stream_mb = 8 * STREAM_BATCH_BYTES / 2**20
    assert after - before < 150 * per_stream_mb, (
        f"150 idle streams grew the server from {before:.0f} MB to {after:.0f} MB"
    )
    await served.terminate(within=30)


async def test_sigterm_with_streams_whose_clients_vanished_exits_promptly_and_quietly(
    serve: Callable[..., Awaitable[ServeProcess]],
) -> None:
    served = await serve(max_streams_per_tenant=100, max_streams=100, delivery_timeout="2s")
    await served.publish_backlog(2000, 4000)
    channels, _calls = await open_idle_streams(served.target, 60)
    # The clients go away mid-stream, with writes of the server pending, and the server is
    # told to stop at once.
    for channel in channels:
        await channel.close()
    # grace (delivery_timeout, 2 s) + the shutdown margin, and slack for a loaded machine
    log = await served.terminate(within=2 + SHUTDOWN_MARGIN + 10)
    assert "shutting down" in log
    assert "Traceback" not in log and " ERROR " not in log, log
