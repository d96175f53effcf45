"""SSRF: endpoint targets in loopback, private, link-local (metadata) or unspecified address
space are refused when a subscription is created or changed, and again at delivery time
(SPEC §3), through the real server.

No traffic leaves loopback: names are resolved by /etc/hosts (`localhost`) or by a fake resolver
injected into the TargetGuard; servers that would accept a public target run no dispatcher; and
the delivery-time tests only use targets that lead back to 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Mapping

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from tests.conftest import ServerFactory
from tests.support.factories import deliveries_of, publish, subscribe, wait_delivery
from tests.support.receiver import Receiver
from tests.support.rpc import invalid_field
from tests.support.server import RunningServer
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb
from webhook_grpc.app import Roles
from webhook_grpc.dispatch import resolver as delivery_resolver
from webhook_grpc.services import target_guard

FORBIDDEN_HOSTS = [
    # 127.0.0.0/8 and its other spellings
    "127.0.0.1",
    "127.255.255.254",
    "127.1",
    "0x7f.1",
    "0177.0.0.1",
    "2130706433",
    "127.0.0.1.",
    # ::1
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    # private
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "192.168.255.255",
    # link-local, cloud metadata
    "169.254.169.254",
    "169.254.0.1",
    "[fe80::1]",
    "[fd00:ec2::254]",
    # unspecified
    "0.0.0.0",
    "0",
    "[::]",
    # IPv4-mapped, NAT64 and 6to4 IPv6 forms of the above
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::ffff:10.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[::ffff:192.168.1.1]",
    "[::ffff:0.0.0.0]",
    "[64:ff9b::7f00:1]",
    "[2002:a9fe:a9fe::1]",
    # names that resolve (locally, /etc/hosts) to loopback
    "localhost",
    "LOCALHOST",
]
# Just outside the forbidden ranges: accepted (by a server without a dispatcher, so nothing is
# ever sent to them).
PUBLIC_NEIGHBOURS = ["11.0.0.1", "172.15.255.255", "172.32.0.1", "192.169.0.1", "169.255.0.1"]

FAKE_DNS: Mapping[str, list[str]] = {
    "hooks.example.com": ["93.184.216.34"],
    "metadata.example.com": ["169.254.169.254"],
    "internal.example.com": ["10.1.2.3"],
    "office.example.com": ["192.168.10.10"],
    "docker.example.com": ["172.17.0.1"],
    "loop.example.com": ["127.0.0.1"],
    "loop6.example.com": ["::1"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "zero.example.com": ["0.0.0.0"],
    "mixed.example.com": ["93.184.216.34", "10.0.0.7"],
    "aws6.example.com": ["fd00:ec2::254"],
    # Seen as public when the subscription is made; DNS rebinding turns it into 127.0.0.1.
    "localhost": ["93.184.216.34"],
}


async def fake_dns(host: str, port: int) -> list[str]:
    if host not in FAKE_DNS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return FAKE_DNS[host]


@pytest.fixture
async def strict(make_server: ServerFactory) -> RunningServer:
    """Refuses private targets (http:// is allowed, so that only the address rules decide);
    runs no dispatcher, so an accepted target is never contacted."""
    return await make_server(allow_private_targets=False, roles=Roles(dispatcher=False))


@pytest.fixture
async def strict_fake_dns(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> RunningServer:
    monkeypatch.setattr(target_guard, "resolve_host", fake_dns)
    return await make_server(allow_private_targets=False, roles=Roles(dispatcher=False))


async def create(server: RunningServer, url: str) -> spb.CreateSubscriptionResponse:
    return await subscribe(server, url, ["product.*"])


async def test_forbidden_addresses_are_refused_at_creation(strict: RunningServer) -> None:
    wrong = []
    for host in FORBIDDEN_HOSTS:
        for url in (f"http://{host}/hook", f"https://{host}:8443/x?y=1"):
            try:
                field = await invalid_field(create(strict, url))
            except AssertionError as error:
                wrong.append(f"{url}: {error}")
                continue
            if field != "url":
                wrong.append(f"{url}: refused naming {field!r}")
    assert not wrong, "\n".join(wrong)
    listed = await strict.subscriptions.ListSubscriptions(
        spb.ListSubscriptionsRequest(tenant_id="acme")
    )
    assert listed.subscriptions == []


async def test_public_neighbours_of_the_forbidden_ranges_are_accepted(
    strict: RunningServer,
) -> None:
    for host in PUBLIC_NEIGHBOURS:
        assert (await create(strict, f"https://{host}/hook")).subscription.id


async def test_forbidden_addresses_are_refused_when_a_subscription_changes(
    strict: RunningServer,
) -> None:
    created = await create(strict, "https://93.184.216.34/hook")
    for host in ("127.0.0.1", "[::ffff:169.254.169.254]", "localhost", "10.0.0.1"):
        field = await invalid_field(
            strict.subscriptions.UpdateSubscription(
                spb.UpdateSubscriptionRequest(
                    subscription=spb.Subscription(
                        id=created.subscription.id, url=f"https://{host}/hook"
                    ),
                    update_mask={"paths": ["url"]},
                )
            )
        )
        assert field == "subscription.url"
    got = await strict.subscriptions.GetSubscription(
        spb.GetSubscriptionRequest(id=created.subscription.id)
    )
    assert got.subscription.url == "https://93.184.216.34/hook"


async def test_names_resolving_to_forbidden_addresses_are_refused(
    strict_fake_dns: RunningServer,
) -> None:
    refused = [name for name, addresses in FAKE_DNS.items() if name != "localhost"]
    refused.remove("hooks.example.com")
    for name in [*refused, "unknown.example.com"]:
        assert await invalid_field(create(strict_fake_dns, f"https://{name}/hook")) == "url"
    assert (await create(strict_fake_dns, "https://hooks.example.com/hook")).subscription.id


async def deliver_once(server: RunningServer, subscription_ids: list[str]) -> list[dpb.Delivery]:
    event = await publish(server)
    deliveries = await deliveries_of(server, event.id)
    assert sorted(d.subscription_id for d in deliveries) == sorted(subscription_ids)
    return [await wait_delivery(server, d.id) for d in deliveries]


def loopback_urls(receiver: Receiver) -> list[str]:
    """Every way of writing a target that leads back to the receiver on 127.0.0.1."""
    port = receiver.port
    hosts = [
        "127.0.0.1",
        "127.1",
        "0x7f.1",
        "2130706433",
        "0.0.0.0",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::1]",
        "localhost",
    ]
    return [f"http://{host}:{port}/hook" for host in hosts]


async def test_private_targets_are_refused_again_at_delivery(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    permissive = await make_server()  # development settings: private targets allowed
    urls = loopback_urls(receiver)
    ids = [(await create(permissive, url)).subscription.id for url in urls]
    await permissive.stop()

    strict = await make_server(allow_private_targets=False, max_retry_attempts=1)
    finished = await deliver_once(strict, ids)
    url_of = dict(zip(ids, urls, strict=True))
    wrong = [
        f"{url_of[d.subscription_id]}: {dpb.DeliveryStatus.Name(d.status)} "
        f"{[dpb.AttemptError.Name(a.error) for a in d.attempts]}"
        for d in finished
        if d.status != dpb.DELIVERY_STATUS_FAILED
        or [a.error for a in d.attempts] != [dpb.ATTEMPT_ERROR_REFUSED_TARGET]
    ]
    assert not wrong, "\n".join(wrong)
    assert receiver.received == []


class RebindingResolver(AbstractResolver):
    """What aiohttp sees at delivery time: `localhost` now answers 127.0.0.1."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        assert host == "localhost", f"{host} must not be resolved in this test"
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        pass


async def test_dns_rebinding_after_creation_is_refused_at_delivery(
    make_server: ServerFactory, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name passed the check at creation (it resolved to a public address then); at
    delivery it resolves to loopback, and the attempt is refused before connecting."""
    monkeypatch.setattr(target_guard, "resolve_host", fake_dns)
    rebinding = RebindingResolver()
    monkeypatch.setattr(delivery_resolver, "ThreadedResolver", lambda: rebinding)
    strict = await make_server(allow_private_targets=False, max_retry_attempts=1)
    created = await create(strict, f"http://localhost:{receiver.port}/hook")

    [finished] = await deliver_once(strict, [created.subscription.id])
    assert finished.status == dpb.DELIVERY_STATUS_FAILED
    [attempt] = finished.attempts
    assert attempt.error == dpb.ATTEMPT_ERROR_REFUSED_TARGET
    assert rebinding.asked == ["localhost"]
    assert receiver.received == []
