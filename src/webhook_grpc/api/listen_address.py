"""Whether the gRPC address can be bound, asked before anything else starts: gRPC's own failure
is a C-core log line and a RuntimeError that says only "set GRPC_VERBOSITY=debug"."""

from __future__ import annotations

import errno
import socket

# The errors that mean "not this address"; others (no IPv6 on this host for a name that also
# resolves to it) are left for gRPC, which binds what it can.
_REFUSED = (errno.EADDRINUSE, errno.EACCES)


def check_bindable(address: str) -> None:
    """Raise OSError when `address` (host:port) is taken or not permitted; port 0 always binds."""
    host, _, port_text = address.rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        return
    if port == 0:
        return
    infos = socket.getaddrinfo(
        host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(sockaddr)
            except OSError as error:
                if error.errno in _REFUSED:
                    raise
