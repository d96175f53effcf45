"""`serve --workers N` (cli/workers.py): N server processes on one gRPC and one REST port."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.processes import LoggingProcess, settings_env


def socket_owners(port: int, pids: list[int]) -> dict[int, int]:
    """How many established TCP connections each of `pids` holds on its local `port`, read
    from /proc: which process answers a connection is the kernel's choice under SO_REUSEPORT."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                local_port = int(fields[1].rpartition(":")[2], 16)
                if local_port == port and fields[3] == "01":  # ESTABLISHED
                    inodes.add(f"socket:[{fields[9]}]")
    owners = {}
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        owners[pid] = sum(1 for fd in fds.iterdir() if _link(fd) in inodes)
    return owners


def _link(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:  # closed meanwhile
        return ""


async def worker_pids(service: LoggingProcess, count: int) -> list[int]:
    return [
        int((await service.wait_for_line(rf"started worker {index} \(pid (\d+)\)")).group(1))
        for index in range(count)
    ]


async def http_port(service: LoggingProcess) -> int:
    return int((await service.wait_for_line(r"REST/JSON API on http://[^ ]+:(\d+)/")).group(1))


def alive(pid: int) -> bool:
    """Running (an exited process not yet reaped by its new parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.postgres
async def test_workers_answer_on_one_port_each_and_stop_together(postgres_url: str) -> None:
    env = settings_env(postgres_url, workers=2, metrics_listen="127.0.0.1:0")
    service = await LoggingProcess.start("serve", env)
    channels: list[grpc.aio.Channel] = []
    writers: list[asyncio.StreamWriter] = []
    try:
        pids = await worker_pids(service, 2)
        # Both workers log the same ports (the supervisor chose them for listen port 0).
        for index in range(2):
            await service.wait_for_line(rf"listening on [^ ]+ \(worker {index}\)")
        port, rest_port = await service.port(), await http_port(service)
        assert len({line for line in service.stderr if f"127.0.0.1:{port} (worker" in line}) == 2

        # New connections until each worker holds some, every one answered by a worker.
        while min(socket_owners(port, pids).values()) == 0:
            assert len(channels) < 64, socket_owners(port, pids)
            channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            )
            channels.append(channel)
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert response.status == health_pb2.HealthCheckResponse.SERVING
        while min(socket_owners(rest_port, pids).values()) == 0:
            assert len(writers) < 64, socket_owners(rest_port, pids)
            reader, writer = await asyncio.open_connection("127.0.0.1", rest_port)
            writers.append(writer)
            # /readyz answers 200 only when this worker reaches the database.
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200"), head

        # Metrics: each worker its own port (port 0 here: each a free one), each its counters.
        metrics_ports = set()
        for line in service.stderr:  # each logs it before it listens for calls
            if match := re.search(r"metrics on http://[^ ]+:(\d+)/metrics", line):
                metrics_ports.add(int(match.group(1)))
        assert len(metrics_ports) == 2
        for metrics_port in metrics_ports:
            reader, writer = await asyncio.open_connection("127.0.0.1", metrics_port)
            writers.append(writer)
            writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
            assert b"webhook_feed_streams_open" in await asyncio.wait_for(reader.read(), 10)

        assert await service.terminate() == 0
        assert [pid for pid in pids if alive(pid)] == []
        assert any("stopping 2 workers" in line for line in service.stderr)
    finally:
        for writer in writers:
            writer.close()
        for channel in channels:
            await channel.close()
        await service.close()


@pytest.mark.postgres
async def test_a_worker_that_dies_stops_the_service_non_zero(postgres_url: str) -> None:
    service = await LoggingProcess.start("serve", settings_env(postgres_url, workers=2))
    try:
        pids = await worker_pids(service, 2)
        await service.wait_for_line(r"listening on [^ ]+ \(worker 1\)")
        await service.wait_for_line(r"listening on [^ ]+ \(worker 0\)")
        os.kill(pids[1], signal.SIGKILL)
        code = await asyncio.wait_for(service.process.wait(), 60)
        assert code != 0
        assert not alive(pids[0])
        await service.wait_for_line(rf"worker 1 \(pid {pids[1]}\) was killed by SIGKILL")
    finally:
        await service.close()


async def test_more_than_one_worker_is_refused_on_sqlite(tmp_path: Path) -> None:
    env = settings_env(f"sqlite:///{tmp_path / 'webhooks.db'}", workers=2)
    service = await LoggingProcess.start("serve", env)
    try:
        code = await asyncio.wait_for(service.process.wait(), 60)
        await service.wait_for_line("workers = 2 needs PostgreSQL")
        assert code == 2
        assert not any("listening on" in line for line in service.stderr)
    finally:
        await service.close()


@pytest.mark.postgres
async def test_workers_end_when_the_supervisor_is_killed(postgres_url: str) -> None:
    service = await LoggingProcess.start("serve", settings_env(postgres_url, workers=2))
    try:
        pids = await worker_pids(service, 2)
        for index in range(2):
            await service.wait_for_line(rf"listening on [^ ]+ \(worker {index}\)")
        service.process.kill()
        # No orphan keeps serving on the shared port: each gets SIGTERM and stops as serve does.
        # The wait ends once every process holding the output pipe (the workers too) is gone.
        await asyncio.wait_for(service.process.wait(), 60)
        assert [pid for pid in pids if alive(pid)] == []
    finally:
        await service.close()
