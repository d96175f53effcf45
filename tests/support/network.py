"""Loopback ports: a free one to listen on, and which connections a process holds."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def connection_ports(pid: int, remote_port: int) -> set[int]:
    """The local ports of the IPv4 TCP connections that process `pid` holds to `remote_port`
    (Linux: its socket inodes from /proc/<pid>/fd, matched against /proc/net/tcp)."""
    fds = Path(f"/proc/{pid}/fd")
    inodes = set()
    for fd in os.listdir(fds):
        try:
            link = os.readlink(fds / fd)
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:["):
            inodes.add(link.removeprefix("socket:[").removesuffix("]"))
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if inode in inodes and int(remote.rpartition(":")[2], 16) == remote_port:
            ports.add(int(local.rpartition(":")[2], 16))
    return ports
