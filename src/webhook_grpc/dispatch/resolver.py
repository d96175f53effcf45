"""The delivery-time target check: aiohttp connects only to addresses this resolver returned,
so filtering here leaves no window between checking an address and connecting to it (DNS
rebinding). aiohttp does not resolve IP-literal hosts, so those go through check_literal_host."""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from webhook_grpc.domain.targets import is_forbidden_address, is_forbidden_host_address, literal_ip


class ForbiddenTargetError(OSError):
    """The target host is (or resolves only to) a loopback, private or link-local address."""


class GuardedResolver(AbstractResolver):
    """Wraps a resolver (aiohttp's ThreadedResolver by default) and drops forbidden addresses
    unless `allow_private`; raises ForbiddenTargetError when none is left."""

    def __init__(self, allow_private: bool, resolver: AbstractResolver | None = None) -> None:
        self._allow_private = allow_private
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._resolver is None:
            # Created here, not in __init__: ThreadedResolver needs the running loop.
            self._resolver = ThreadedResolver()
        results = await self._resolver.resolve(host, port, family)
        if self._allow_private:
            return results
        allowed = [result for result in results if not is_forbidden_host_address(result["host"])]
        if not allowed:
            raise ForbiddenTargetError(
                f"host {host!r} resolves only to loopback, private, link-local or otherwise "
                "non-public addresses"
            )
        return allowed

    async def close(self) -> None:
        if self._resolver is not None:
            await self._resolver.close()


def check_literal_host(host: str, allow_private: bool) -> None:
    """Raise ForbiddenTargetError when `host` is an IP literal of a forbidden address."""
    if allow_private:
        return
    ip = literal_ip(host)
    if ip is not None and is_forbidden_address(ip):
        raise ForbiddenTargetError(f"target address {host!r} is not a public address")
