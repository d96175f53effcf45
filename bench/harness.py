"""Processes and plumbing for the benchmark: a fresh PostgreSQL database, the receiver, servers
and dispatchers as real processes on loopback, each stopped at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql

from webhook_grpc._gen.webhooks.v1 import (
    events_pb2,
    events_pb2_grpc,
    feed_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)
from webhook_grpc.encryption import generate_key

# Subscription secrets are encrypted at rest; PostgreSQL needs a configured key (one per run).
SECRET_KEY = generate_key()

ADMIN_URL = os.environ.get(
    "WEBHOOK_GRPC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"webhook_grpc_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def truncate(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE attempts, deliveries, events, subscriptions RESTART IDENTITY CASCADE"
        )


def analyze(database_url: str) -> None:
    """Refresh planner statistics after a bulk load, as autovacuum would within a minute; a
    freshly filled queue table otherwise looks empty to the planner."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE deliveries")
        conn.execute("ANALYZE events")


@dataclass(frozen=True)
class Usage:
    cpu: float = 0.0
    """CPU seconds, every thread."""
    loop_waiting: float = 0.0
    """Seconds the main thread was runnable but not running (/proc/<pid>/schedstat)."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cpu + other.cpu, self.loop_waiting + other.loop_waiting)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.cpu - other.cpu, self.loop_waiting - other.loop_waiting)


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    name: str

    def stop(self, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGCONT)  # a stopped process would not see SIGTERM
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def usage(self) -> Usage:
        """CPU time of the process so far (all threads), and how long its main thread (the
        event loop) has waited for a CPU while runnable."""
        return _usage(self.popen.pid)

    def tree_usage(self) -> Usage:
        """`usage` summed over the process and its children (the workers of `serve --workers
        N`); the loop waiting of each main thread is summed too."""
        total = Usage()
        for pid in [self.popen.pid, *_children(self.popen.pid)]:
            with contextlib.suppress(FileNotFoundError):  # ended meanwhile
                total += _usage(pid)
        return total

    def rss_kb(self) -> int:
        """Resident memory now (VmRSS), in KiB."""
        with open(f"/proc/{self.popen.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def peak_rss_mb(self) -> float:
        with open(f"/proc/{self.popen.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0.0


def _usage(pid: int) -> Usage:
    with open(f"/proc/{pid}/stat") as stat:
        # The fields after the command name, which is in parentheses and may hold spaces.
        fields = stat.read().rpartition(")")[2].split()
    with open(f"/proc/{pid}/task/{pid}/schedstat") as schedstat:
        waited_ns = int(schedstat.read().split()[1])
    ticks = os.sysconf("SC_CLK_TCK")
    return Usage((int(fields[11]) + int(fields[12])) / ticks, waited_ns / 1e9)


def _children(pid: int) -> list[int]:
    """The processes `pid` started, and theirs (from /proc/<pid>/task/*/children)."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                direct = [int(child) for child in children.read().split()]
        except FileNotFoundError:
            continue
        for child in direct:
            found += [child, *_children(child)]
    return found


def _service_env(database_url: str, **settings: Any) -> dict[str, str]:
    env = dict(os.environ)
    values = {
        "database_url": database_url,
        "allow_http_targets": "true",
        "allow_private_targets": "true",
        "log_level": "WARNING",
        "log_format": "text",
        "poll_interval": "200ms",
        "secret_key": SECRET_KEY,
        **settings,
    }
    for name, value in values.items():
        env[f"WEBHOOK_GRPC_{name.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    return env


@dataclass
class Cluster:
    """Everything one scenario runs against; `close` stops every process it started."""

    database_url: str
    processes: list[Process] = field(default_factory=list)
    receiver_port: int = 0
    target: str = ""
    http: str = ""
    """The server's REST base URL."""
    live: Process | None = None

    def start_receiver(self) -> None:
        self.receiver_port = free_port()
        popen = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", str(self.receiver_port)],
            stdout=subprocess.DEVNULL,
        )
        self.processes.append(Process(popen, "receiver"))
        _wait_port(self.receiver_port)

    def receiver_url(self, name: str, **query: str) -> str:
        suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
        return f"http://127.0.0.1:{self.receiver_port}/{name}{suffix}"

    async def receiver_stats(self, name: str, arrivals: bool = False) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.receiver_port}/stats/{name}" + (
            "?arrivals=1" if arrivals else ""
        )
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            result: dict[str, Any] = await response.json()
            return result

    def start_server(self, **settings: Any) -> None:
        """The scenarios' server (`target`, `http`); `server()` is its process."""
        _, self.target, self.http = self.start_another_server("server", **settings)

    def start_another_server(self, name: str, **settings: Any) -> tuple[Process, str, str]:
        """A `serve` process (`workers` in `settings` for several) on ports of its own: the
        process, its gRPC target and its REST base URL."""
        target = f"127.0.0.1:{free_port()}"
        http_listen = f"127.0.0.1:{free_port()}"
        env = _service_env(self.database_url, listen=target, http_listen=http_listen, **settings)
        # A session of its own, as a deployed server has: with autogroup scheduling (the
        # default on desktop kernels and on the development machine) a server in the load
        # generator's session shares one CPU budget with it, which measured in gRPC's favour
        # against REST (docs/PERFORMANCE.md, REST).
        popen = subprocess.Popen(
            [sys.executable, "-m", "webhook_grpc", "serve"], env=env, start_new_session=True
        )
        process = Process(popen, name)
        self.processes.append(process)
        _wait_health(target)
        # Health answers once one worker listens: wait for all of them.
        _wait_listeners(int(target.rpartition(":")[2]), int(settings.get("workers", 1)))
        return process, target, f"http://{http_listen}"

    def server(self) -> Process:
        """The process `start_server` started."""
        return next(process for process in self.processes if process.name == "server")

    def live_dispatcher(self) -> Process:
        """A dispatcher with the default settings, shared by the scenarios that only need one
        running (`scenarios.LIVE_DISPATCHER`): started by the first, stopped by `run` before
        any other scenario. A start costs 1-5 s on this machine, much of `make bench-smoke`."""
        if self.live is None or self.live.popen.poll() is not None:
            self.live = self.start_dispatcher()
        return self.live

    def stop_live_dispatcher(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def start_dispatcher(self, **settings: Any) -> Process:
        env = _service_env(self.database_url, **settings)
        command = [sys.executable, "-m", "webhook_grpc", "dispatcher"]
        popen = subprocess.Popen(command, env=env)
        process = Process(popen, "dispatcher")
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


def _wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _wait_listeners(port: int, count: int, timeout: float = 60) -> None:
    """Until `count` sockets listen on `port` (SO_REUSEPORT: one per worker), from /proc."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as lines:
                for line in list(lines)[1:]:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                        listening += 1
        if listening >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"fewer than {count} processes listen on port {port}")


def _wait_health(target: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    raise RuntimeError(f"server at {target} did not become healthy")


class Stubs:
    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.events = events_pb2_grpc.EventServiceStub(self.channel)
        self.subscriptions = subscriptions_pb2_grpc.SubscriptionServiceStub(self.channel)
        self.feed = feed_pb2_grpc.FeedServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def subscribe(
        self,
        url: str,
        patterns: list[str],
        tenant: str = "bench",
        filter: str = "",
        algorithm: subscriptions_pb2.SigningAlgorithm.ValueType = (
            subscriptions_pb2.SIGNING_ALGORITHM_HMAC_SHA256
        ),
        ordering: subscriptions_pb2.Ordering.ValueType = subscriptions_pb2.ORDERING_UNORDERED,
    ) -> str:
        response = await self.subscriptions.CreateSubscription(
            subscriptions_pb2.CreateSubscriptionRequest(
                tenant_id=tenant,
                url=url,
                event_patterns=patterns,
                filter=filter,
                signing_algorithm=algorithm,
                ordering=ordering,
            )
        )
        return str(response.subscription.id)

    async def publish_backlog(self, count: int, event_type: str = "product.created") -> None:
        async def batch(start: int) -> None:
            await self.events.PublishEvents(
                events_pb2.PublishEventsRequest(
                    events=[
                        event_request(i, event_type) for i in range(start, min(count, start + 500))
                    ]
                )
            )

        starts = list(range(0, count, 500))
        for index in range(0, len(starts), 4):
            await asyncio.gather(*(batch(s) for s in starts[index : index + 4]))


def event_request(i: int, event_type: str = "product.created") -> events_pb2.PublishEventRequest:
    request = events_pb2.PublishEventRequest(tenant_id="bench", type=event_type, entity_id=f"p{i}")
    request.data.update(
        {"id": f"p{i}", "sku": f"SKU-{i}", "name": "Widget", "selling_price": "19.90"}
    )
    return request


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
