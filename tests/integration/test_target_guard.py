"""The target guard at subscription time (fake DNS) and at delivery time (real aiohttp)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from webhook_grpc.dispatch.resolver import (
    ForbiddenTargetError,
    GuardedResolver,
    check_literal_host,
)
from webhook_grpc.domain.errors import InvalidArgument
from webhook_grpc.services.target_guard import TargetGuard, resolve_host

DNS: Mapping[str, list[str]] = {
    "hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "internal.example.com": ["10.0.0.5"],
    "metadata.example.com": ["169.254.169.254"],
    "mixed.example.com": ["93.184.216.34", "127.0.0.1"],
    "mapped.example.com": ["::ffff:192.168.1.1"],
    "empty.example.com": [],
}


async def fake_dns(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return DNS[host]


async def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} should not have been resolved")


async def refused(guard: TargetGuard, url: str, field: str = "url") -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        await guard.check(url, field)
    assert caught.value.field == field
    return caught.value


async def test_public_host_passes_with_its_addresses() -> None:
    guard = TargetGuard(allow_http=False, allow_private=False, resolver=fake_dns)
    assert await guard.check("https://hooks.example.com/receive") == DNS["hooks.example.com"]


async def test_public_literal_ip_passes_without_resolving() -> None:
    guard = TargetGuard(allow_http=False, allow_private=False, resolver=no_dns)
    assert await guard.check("https://93.184.216.34/x") == ["93.184.216.34"]


@pytest.mark.parametrize(
    "host",
    [
        "internal.example.com",
        "metadata.example.com",
        "mixed.example.com",  # any forbidden address refuses the target
        "mapped.example.com",
    ],
)
async def test_names_resolving_to_forbidden_addresses_are_refused(host: str) -> None:
    guard = TargetGuard(allow_http=False, allow_private=False, resolver=fake_dns)
    error = await refused(guard, f"https://{host}/x", "subscription.url")
    assert "private" in error.description
    assert DNS[host][-1] not in error.description  # no internal addresses leak back


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://172.16.0.1/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fd00:ec2::254]/",
        "https://0.0.0.0/hook",
        "https://2130706433/hook",
        "https://0x7f.1/hook",
    ],
)
async def test_forbidden_literal_addresses_are_refused(url: str) -> None:
    guard = TargetGuard(allow_http=False, allow_private=False, resolver=no_dns)
    assert "private" in (await refused(guard, url)).description


async def test_refusals_name_the_setting_and_the_development_profile() -> None:
    guard = TargetGuard(allow_http=False, allow_private=False, resolver=no_dns)
    loopback = (await refused(guard, "https://127.0.0.1:8000/hooks")).description
    plain_http = (await refused(guard, "http://127.0.0.1:8000/hooks")).description
    assert "allow_private_targets" in loopback and "--dev" in loopback
    assert "allow_http_targets" in plain_http and "--dev" in plain_http


@pytest.mark.parametrize("host", ["nowhere.example.com", "empty.example.com"])
async def test_names_that_do_not_resolve_are_refused(host: str) -> None:
    guard = TargetGuard(allow_http=False, allow_private=False, resolver=fake_dns)
    assert "does not resolve" in (await refused(guard, f"https://{host}/x")).description


async def test_slow_resolution_counts_as_not_resolving() -> None:
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(10)
        return ["93.184.216.34"]

    guard = TargetGuard(False, False, resolver=slow, resolve_timeout=0.05)
    assert "does not resolve" in (await refused(guard, "https://slow.example.com/")).description


async def test_url_rules_apply_before_resolution() -> None:
    guard = TargetGuard(allow_http=False, allow_private=False, resolver=no_dns)
    assert "http" in (await refused(guard, "http://hooks.example.com/")).description
    assert "credentials" in (await refused(guard, "https://u:p@hooks.example.com/")).description


async def test_allow_private_skips_resolution() -> None:
    guard = TargetGuard(allow_http=True, allow_private=True, resolver=no_dns)
    assert await guard.check("http://hooks.example.test/receive") == []
    assert await guard.check("https://127.0.0.1:9/hook") == ["127.0.0.1"]
    assert await guard.check("https://[::1]/hook") == ["::1"]


async def test_resolver_receives_host_and_port() -> None:
    seen: list[tuple[str, int]] = []

    async def recording(host: str, port: int) -> list[str]:
        seen.append((host, port))
        return ["93.184.216.34"]

    guard = TargetGuard(allow_http=True, allow_private=False, resolver=recording)
    await guard.check("https://Hooks.Example.com:8443/x")
    await guard.check("http://hooks.example.com/x")
    assert seen == [("hooks.example.com", 8443), ("hooks.example.com", 80)]


async def test_default_resolver_uses_the_system_resolver() -> None:
    assert "127.0.0.1" in await resolve_host("localhost", 443)
    guard = TargetGuard(allow_http=False, allow_private=False)
    assert "private" in (await refused(guard, "https://localhost/hook")).description


def test_filter_addresses() -> None:
    guard = TargetGuard(allow_http=False, allow_private=False)
    addresses = ["93.184.216.34", "10.0.0.1", "::1", "2606:4700::1111", "garbage"]
    assert guard.filter_addresses("h.example.com", addresses) == [
        "93.184.216.34",
        "2606:4700::1111",
    ]
    assert guard.filter_addresses("127.0.0.1", ["127.0.0.1"]) == []
    lenient = TargetGuard(allow_http=False, allow_private=True)
    assert lenient.filter_addresses("h.example.com", addresses) == addresses


# --- delivery time: aiohttp's resolver -------------------------------------------------------


class StaticResolver(AbstractResolver):
    """aiohttp resolver answering from a table (a DNS that may rebind to anything)."""

    def __init__(self, table: Mapping[str, list[str]]) -> None:
        self._table = table
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self._table[host]
        ]

    async def close(self) -> None:
        self.closed = True


async def test_guarded_resolver_drops_forbidden_addresses() -> None:
    inner = StaticResolver(DNS)
    resolver = GuardedResolver(allow_private=False, resolver=inner)
    mixed = await resolver.resolve("mixed.example.com", 443)
    assert [result["host"] for result in mixed] == ["93.184.216.34"]
    public = await resolver.resolve("hooks.example.com", 443)
    assert [result["host"] for result in public] == DNS["hooks.example.com"]
    for host in ("internal.example.com", "metadata.example.com", "mapped.example.com"):
        with pytest.raises(ForbiddenTargetError):
            await resolver.resolve(host, 443)
    await resolver.close()
    assert inner.closed


async def test_guarded_resolver_allows_private_when_configured() -> None:
    resolver = GuardedResolver(allow_private=True, resolver=StaticResolver(DNS))
    results = await resolver.resolve("mixed.example.com", 443)
    assert [result["host"] for result in results] == DNS["mixed.example.com"]


def test_forbidden_target_error_is_an_os_error() -> None:
    assert issubclass(ForbiddenTargetError, OSError)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "[::1]", "::1", "169.254.169.254", "0x7f.1", "2130706433", "10.0.0.1"]
)
def test_check_literal_host_refuses_forbidden_ips(host: str) -> None:
    with pytest.raises(ForbiddenTargetError):
        check_literal_host(host, allow_private=False)
    check_literal_host(host, allow_private=True)


@pytest.mark.parametrize("host", ["93.184.216.34", "2606:4700::1111", "example.com", "localhost"])
def test_check_literal_host_passes_public_ips_and_names(host: str) -> None:
    # Names are checked by GuardedResolver when aiohttp resolves them.
    check_literal_host(host, allow_private=False)


@pytest.fixture
async def local_server() -> AsyncIterator[int]:
    async def hook(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = runner.addresses[0][1]
    yield port
    await runner.cleanup()


async def _get(url: str, resolver: AbstractResolver) -> int:
    connector = aiohttp.TCPConnector(resolver=resolver)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response,
    ):
        return response.status


async def test_real_request_to_localhost_is_refused(local_server: int) -> None:
    url = f"http://localhost:{local_server}/hook"
    with pytest.raises(aiohttp.ClientConnectorError) as caught:
        await _get(url, GuardedResolver(allow_private=False))
    assert isinstance(caught.value.__cause__, ForbiddenTargetError)


async def test_real_request_via_rebinding_name_is_refused(local_server: int) -> None:
    # A public-looking name whose DNS answer changed to loopback after the subscription check.
    rebound = StaticResolver({"hooks.example.com": ["127.0.0.1"]})
    url = f"http://hooks.example.com:{local_server}/hook"
    with pytest.raises(aiohttp.ClientConnectorError) as caught:
        await _get(url, GuardedResolver(allow_private=False, resolver=rebound))
    assert isinstance(caught.value.__cause__, ForbiddenTargetError)


async def test_real_request_to_localhost_allowed_for_private_targets(local_server: int) -> None:
    url = f"http://localhost:{local_server}/hook"
    assert await _get(url, GuardedResolver(allow_private=True)) == 200
