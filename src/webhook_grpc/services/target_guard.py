"""Checks an endpoint URL when a subscription is created or changed: the URL rules, then where
its host resolves to (SPEC §3). Delivery checks again at connect time (dispatch/resolver.py)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable

from webhook_grpc.domain.errors import InvalidArgument
from webhook_grpc.domain.targets import (
    is_forbidden_address,
    is_forbidden_host_address,
    literal_ip,
    validate_endpoint_url,
)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the IP addresses the host resolves to; raises OSError when it does not."""

RESOLVE_TIMEOUT = 5.0


async def resolve_host(host: str, port: int) -> list[str]:
    """The unique addresses getaddrinfo gives for `host`, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class TargetGuard:
    def __init__(
        self,
        allow_http: bool,
        allow_private: bool,
        resolver: Resolver | None = None,
        resolve_timeout: float = RESOLVE_TIMEOUT,
    ) -> None:
        self._allow_http = allow_http
        self._allow_private = allow_private
        self._resolve = resolver or resolve_host
        self._resolve_timeout = resolve_timeout

    async def check(self, url: str, field: str = "url") -> list[str]:
        """Validate `url` and the addresses its host resolves to; returns those addresses.

        With private targets allowed there is nothing to guard, so a host name is not resolved
        (it may not exist yet in development) and the result is empty.
        """
        endpoint = validate_endpoint_url(url, self._allow_http, field)
        refused = InvalidArgument(
            field,
            f"host {endpoint.host!r} resolves to a loopback, private, link-local or otherwise "
            "non-public address, which is not allowed as a webhook target "
            "(allow_private_targets is off; `webhook-grpc serve --dev` allows it for development)",
        )
        ip = literal_ip(endpoint.host)
        if ip is not None:
            if not self._allow_private and is_forbidden_address(ip):
                raise refused
            return [str(ip)]
        if self._allow_private:
            return []
        try:
            async with asyncio.timeout(self._resolve_timeout):
                addresses = await self._resolve(endpoint.host, endpoint.port)
        except (OSError, UnicodeError, TimeoutError):
            addresses = []
        if not addresses:
            raise InvalidArgument(field, f"host {endpoint.host!r} does not resolve")
        # Any forbidden address refuses the target: the HTTP client may pick any of them.
        if len(self.filter_addresses(endpoint.host, addresses)) < len(addresses):
            raise refused
        return addresses

    def filter_addresses(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The addresses of `host` a delivery may connect to: all of them when private targets
        are allowed, otherwise the public ones (none when `host` is itself a forbidden IP)."""
        if self._allow_private:
            return list(addresses)
        ip = literal_ip(host)
        if ip is not None and is_forbidden_address(ip):
            return []
        return [address for address in addresses if not is_forbidden_host_address(address)]
