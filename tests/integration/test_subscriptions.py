"""SubscriptionService end to end: a real server on loopback, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from tests.conftest import ServerFactory
from tests.support.rpc import invalid_field, rpc_error
from tests.support.server import RunningServer
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as pb
from webhook_grpc.domain.signing import generate_secret

URL = "https://hooks.example.test/receive"


async def create(server: RunningServer, **fields: object) -> pb.CreateSubscriptionResponse:
    request = pb.CreateSubscriptionRequest(
        tenant_id=str(fields.pop("tenant_id", "acme")),
        url=str(fields.pop("url", "http://127.0.0.1:9/hook")),
        event_patterns=list(fields.pop("event_patterns", ["product.*"])),  # type: ignore[call-overload]
        **fields,  # type: ignore[arg-type]
    )
    return await server.subscriptions.CreateSubscription(request)


async def test_create_returns_secret_once_and_reads_never_do(server: RunningServer) -> None:
    created = await create(server, description="orders", metadata={"team": "sales"})
    assert created.secret.startswith("whsec_")
    assert len(base64.b64decode(created.secret.removeprefix("whsec_"))) == 32
    sub = created.subscription
    assert sub.id.startswith("sub_")
    assert sub.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert sub.payload_mode == pb.PAYLOAD_MODE_FULL
    assert dict(sub.metadata) == {"team": "sales"}
    secret = created.secret.encode()

    stub = server.subscriptions
    responses = [
        await stub.GetSubscription(pb.GetSubscriptionRequest(id=sub.id)),
        await stub.ListSubscriptions(pb.ListSubscriptionsRequest(tenant_id="acme")),
        await stub.DisableSubscription(pb.DisableSubscriptionRequest(id=sub.id)),
        await stub.ActivateSubscription(pb.ActivateSubscriptionRequest(id=sub.id)),
        await stub.UpdateSubscription(
            pb.UpdateSubscriptionRequest(
                subscription=pb.Subscription(id=sub.id, description="changed"),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            )
        ),
    ]
    for response in responses:
        wire = response.SerializeToString()
        assert secret not in wire and b"whsec_" not in wire


async def test_supplied_secret_is_validated(server: RunningServer) -> None:
    good = generate_secret()
    assert (await create(server, secret=good)).secret == good
    short = "whsec_" + base64.b64encode(b"x" * 23).decode()
    assert await invalid_field(create(server, secret=short)) == "secret"
    assert await invalid_field(create(server, secret="not-a-secret")) == "secret"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/x", "scheme"),
        ("/relative", "relative"),
        ("https://user:pass@example.com/x", "credentials"),
        ("https://example.com/" + "a" * 2048, "too long"),
    ],
)
async def test_malformed_urls_are_refused(server: RunningServer, url: str, why: str) -> None:
    assert await invalid_field(create(server, url=url)) == "url", why


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://172.16.0.1/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
    ],
)
async def test_private_targets_refused_unless_allowed(make_server: ServerFactory, url: str) -> None:
    strict = await make_server(allow_private_targets=False, allow_http_targets=False)
    assert await invalid_field(create(strict, url=url)) == "url"


async def test_plain_http_needs_allow_http_targets(make_server: ServerFactory) -> None:
    strict = await make_server(allow_http_targets=False)
    assert await invalid_field(create(strict, url="http://127.0.0.1:9/hook")) == "url"
    assert (await create(strict, url="https://127.0.0.1:9/hook")).subscription.id


async def test_event_patterns(server: RunningServer) -> None:
    error = await rpc_error(
        create(server, event_patterns=["product.exploded"]), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "product.price_changed" in (error.details() or "")
    assert await invalid_field(create(server, event_patterns=[])) == "event_patterns"
    assert await invalid_field(create(server, event_patterns=["*", "bad pattern"])) == (
        "event_patterns[1]"
    )
    # An entity with no types yet is accepted (modules onboard later), and so is everything.
    created = await create(server, event_patterns=["invoice.*", "*", "customer.created"])
    assert list(created.subscription.event_patterns) == ["invoice.*", "*", "customer.created"]


async def test_limit_holds_under_concurrent_creates(make_server: ServerFactory) -> None:
    server = await make_server(max_subscriptions=25)
    for _ in range(24):
        await create(server)
    results = await asyncio.gather(*(create(server) for _ in range(25)), return_exceptions=True)
    successes = [r for r in results if isinstance(r, pb.CreateSubscriptionResponse)]
    failures = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(successes) == 1, results
    assert len(failures) == 24
    assert {f.code() for f in failures} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    listed = await server.subscriptions.ListSubscriptions(
        pb.ListSubscriptionsRequest(tenant_id="acme", page_size=100)
    )
    assert len(listed.subscriptions) == 25
    # Another tenant has its own allowance.
    assert (await create(server, tenant_id="globex")).subscription.id


async def test_update_with_field_mask(server: RunningServer) -> None:
    sub = (await create(server, description="before")).subscription

    async def update(paths: list[str], **fields: object) -> pb.Subscription:
        response = await server.subscriptions.UpdateSubscription(
            pb.UpdateSubscriptionRequest(
                subscription=pb.Subscription(id=sub.id, **fields),  # type: ignore[arg-type]
                update_mask=field_mask_pb2.FieldMask(paths=paths),
            )
        )
        return response.subscription

    updated = await update(
        ["url", "event_patterns", "payload_mode"],
        url="http://127.0.0.1:9/other",
        event_patterns=["customer.*"],
        payload_mode=pb.PAYLOAD_MODE_THIN,
        description="ignored: not in the mask",
    )
    assert updated.url == "http://127.0.0.1:9/other"
    assert list(updated.event_patterns) == ["customer.*"]
    assert updated.payload_mode == pb.PAYLOAD_MODE_THIN
    assert updated.description == "before"
    assert updated.updated_at.ToDatetime() >= sub.updated_at.ToDatetime()

    assert await invalid_field(update([])) == "update_mask"
    assert await invalid_field(update(["status"])) == "update_mask"
    assert await invalid_field(update(["event_patterns"], event_patterns=["nope.nope"])) == (
        "subscription.event_patterns[0]"
    )
    assert await invalid_field(update(["url"], url="ftp://x")) == "subscription.url"


async def test_lifecycle_disable_activate_delete(server: RunningServer) -> None:
    stub = server.subscriptions
    sub = (await create(server)).subscription
    disabled = (
        await stub.DisableSubscription(pb.DisableSubscriptionRequest(id=sub.id))
    ).subscription
    assert disabled.status == pb.SUBSCRIPTION_STATUS_DISABLED
    assert disabled.disabled_reason == pb.DISABLED_REASON_MANUAL
    assert disabled.HasField("disabled_at")
    active = (
        await stub.ActivateSubscription(pb.ActivateSubscriptionRequest(id=sub.id))
    ).subscription
    assert active.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert active.disabled_reason == pb.DISABLED_REASON_UNSPECIFIED
    assert not active.HasField("disabled_at")
    await stub.DeleteSubscription(pb.DeleteSubscriptionRequest(id=sub.id))
    await rpc_error(
        stub.GetSubscription(pb.GetSubscriptionRequest(id=sub.id)), grpc.StatusCode.NOT_FOUND
    )
    await rpc_error(
        stub.DeleteSubscription(pb.DeleteSubscriptionRequest(id=sub.id)), grpc.StatusCode.NOT_FOUND
    )


async def test_rotate_secret_keeps_old_one_for_grace_period(server: RunningServer) -> None:
    stub = server.subscriptions
    created = await create(server)
    rotated = await stub.RotateSubscriptionSecret(
        pb.RotateSubscriptionSecretRequest(id=created.subscription.id)
    )
    assert rotated.secret.startswith("whsec_") and rotated.secret != created.secret
    expires = rotated.subscription.previous_secret_expires_at.ToDatetime(tzinfo=UTC)
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)

    supplied = generate_secret()
    again = await stub.RotateSubscriptionSecret(
        pb.RotateSubscriptionSecretRequest(
            id=created.subscription.id,
            secret=supplied,
            grace_period=duration_pb2.Duration(seconds=0),
        )
    )
    assert again.secret == supplied
    assert not again.subscription.HasField("previous_secret_expires_at")
    assert (
        await invalid_field(
            stub.RotateSubscriptionSecret(
                pb.RotateSubscriptionSecretRequest(id=created.subscription.id, secret="whsec_short")
            )
        )
        == "secret"
    )


async def test_list_pages_and_filters(server: RunningServer) -> None:
    ids = [(await create(server)).subscription.id for _ in range(5)]
    await server.subscriptions.DisableSubscription(pb.DisableSubscriptionRequest(id=ids[0]))
    seen: list[str] = []
    token = ""
    while True:
        page = await server.subscriptions.ListSubscriptions(
            pb.ListSubscriptionsRequest(tenant_id="acme", page_size=2, page_token=token)
        )
        seen += [s.id for s in page.subscriptions]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids
    disabled = await server.subscriptions.ListSubscriptions(
        pb.ListSubscriptionsRequest(tenant_id="acme", status=pb.SUBSCRIPTION_STATUS_DISABLED)
    )
    assert [s.id for s in disabled.subscriptions] == ids[:1]
    assert (
        await invalid_field(
            server.subscriptions.ListSubscriptions(
                pb.ListSubscriptionsRequest(tenant_id="acme", page_token="garbage!")
            )
        )
        == "page_token"
    )
    assert (
        await invalid_field(
            server.subscriptions.ListSubscriptions(
                pb.ListSubscriptionsRequest(tenant_id="acme", page_size=101)
            )
        )
        == "page_size"
    )
    assert (
        await invalid_field(server.subscriptions.ListSubscriptions(pb.ListSubscriptionsRequest()))
        == "tenant_id"
    )


async def test_delivery_controls_are_set_at_create_and_changed_by_update(
    server: RunningServer,
) -> None:
    plain = (await create(server)).subscription
    assert (plain.ordering, plain.rate_limit_per_second) == (pb.ORDERING_UNORDERED, 0)
    sub = (await create(server, ordering=pb.ORDERING_FIFO, rate_limit_per_second=50)).subscription
    assert (sub.ordering, sub.rate_limit_per_second) == (pb.ORDERING_FIFO, 50)

    response = await server.subscriptions.UpdateSubscription(
        pb.UpdateSubscriptionRequest(
            subscription=pb.Subscription(id=sub.id, ordering=pb.ORDERING_UNSPECIFIED),
            update_mask=field_mask_pb2.FieldMask(paths=["ordering", "rate_limit_per_second"]),
        )
    )
    assert (response.subscription.ordering, response.subscription.rate_limit_per_second) == (
        pb.ORDERING_UNORDERED,
        0,
    )
    fetched = await server.subscriptions.GetSubscription(pb.GetSubscriptionRequest(id=sub.id))
    assert fetched.subscription.ordering == pb.ORDERING_UNORDERED
    assert await invalid_field(create(server, ordering=7)) == "ordering"
