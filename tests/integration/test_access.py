"""Tokens, roles and tenant isolation across the subscription, feed and delivery RPCs."""

from __future__ import annotations

import grpc
import pytest

from tests.conftest import ServerFactory
from tests.support.factories import publish_request
from tests.support.rpc import invalid_field, metadata, rpc_error
from tests.support.server import RunningServer
from tests.support.tokens import ACME, ADMIN, GLOBEX, PUBLISHER, TOKENS
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2, events_pb2, feed_pb2
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as pb


@pytest.fixture
async def secured(make_server: ServerFactory) -> RunningServer:
    return await make_server(tokens=TOKENS)


async def _create(
    server: RunningServer, auth: tuple[tuple[str, str], ...], tenant: str = ""
) -> str:
    response = await server.subscriptions.CreateSubscription(
        pb.CreateSubscriptionRequest(
            tenant_id=tenant, url="http://127.0.0.1:9/hook", event_patterns=["*"]
        ),
        metadata=auth,
    )
    return response.subscription.id


async def test_missing_or_unknown_token_is_unauthenticated(secured: RunningServer) -> None:
    stub = secured.subscriptions
    request = pb.ListSubscriptionsRequest(tenant_id="acme")
    await rpc_error(stub.ListSubscriptions(request), grpc.StatusCode.UNAUTHENTICATED)
    await rpc_error(
        stub.ListSubscriptions(request, metadata=metadata("wrong")), grpc.StatusCode.UNAUTHENTICATED
    )
    await rpc_error(
        stub.ListSubscriptions(request, metadata=(("authorization", "Basic abc"),)),
        grpc.StatusCode.UNAUTHENTICATED,
    )


async def test_tenant_token_acts_for_its_own_tenant_only(secured: RunningServer) -> None:
    stub = secured.subscriptions
    own = await _create(secured, ACME)  # empty tenant_id means the token's own
    assert (
        await stub.GetSubscription(pb.GetSubscriptionRequest(id=own), metadata=ACME)
    ).subscription.tenant_id == "acme"
    await rpc_error(_create(secured, ACME, tenant="globex"), grpc.StatusCode.PERMISSION_DENIED)
    await rpc_error(
        stub.ListSubscriptions(pb.ListSubscriptionsRequest(tenant_id="globex"), metadata=ACME),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_other_tenants_ids_are_not_found_for_every_rpc(secured: RunningServer) -> None:
    stub = secured.subscriptions
    theirs = await _create(secured, GLOBEX)
    calls = [
        stub.GetSubscription(pb.GetSubscriptionRequest(id=theirs), metadata=ACME),
        stub.UpdateSubscription(
            pb.UpdateSubscriptionRequest(
                subscription=pb.Subscription(id=theirs, description="x"),
                update_mask={"paths": ["description"]},
            ),
            metadata=ACME,
        ),
        stub.DeleteSubscription(pb.DeleteSubscriptionRequest(id=theirs), metadata=ACME),
        stub.ActivateSubscription(pb.ActivateSubscriptionRequest(id=theirs), metadata=ACME),
        stub.DisableSubscription(pb.DisableSubscriptionRequest(id=theirs), metadata=ACME),
        stub.RotateSubscriptionSecret(pb.RotateSubscriptionSecretRequest(id=theirs), metadata=ACME),
        stub.SendTestEvent(pb.SendTestEventRequest(id=theirs), metadata=ACME),
    ]
    for call in calls:
        await rpc_error(call, grpc.StatusCode.NOT_FOUND)
    listed = await stub.ListSubscriptions(pb.ListSubscriptionsRequest(), metadata=ACME)
    assert theirs not in [s.id for s in listed.subscriptions]
    # Untouched by all of the above.
    found = await stub.GetSubscription(pb.GetSubscriptionRequest(id=theirs), metadata=GLOBEX)
    assert found.subscription.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert found.subscription.description == ""


async def test_roles(secured: RunningServer) -> None:
    # Publishers publish; they do not manage subscriptions or read feeds.
    await rpc_error(_create(secured, PUBLISHER, tenant="acme"), grpc.StatusCode.PERMISSION_DENIED)
    await rpc_error(
        secured.feed.ListEvents(feed_pb2.ListEventsRequest(tenant_id="acme"), metadata=PUBLISHER),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    published = await secured.events.PublishEvent(
        events_pb2.PublishEventRequest(tenant_id="acme", type="product.created", entity_id="p1"),
        metadata=PUBLISHER,
    )
    assert published.event.id.startswith("evt_")
    # Tenants do not publish.
    await rpc_error(
        secured.events.PublishEvent(
            events_pb2.PublishEventRequest(type="product.created", entity_id="p1"), metadata=ACME
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    # Admins do everything, for any tenant; a tenant must be named where one is needed.
    assert await _create(secured, ADMIN, tenant="globex")
    await rpc_error(_create(secured, ADMIN), grpc.StatusCode.INVALID_ARGUMENT)
    await rpc_error(
        secured.deliveries.ListDeliveries(deliveries_pb2.ListDeliveriesRequest(), metadata=ADMIN),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_tenant_ids_of_another_form_are_refused_naming_the_field(
    secured: RunningServer,
) -> None:
    bad = "ac me!"
    create = _create(secured, ADMIN, tenant=bad)
    assert await invalid_field(create) == "tenant_id"
    assert (
        await invalid_field(
            secured.feed.ListEvents(feed_pb2.ListEventsRequest(tenant_id=bad), metadata=ACME)
        )
        == "tenant_id"
    )
    batch = [publish_request(), publish_request(tenant_id=bad)]
    assert (
        await invalid_field(
            secured.events.PublishEvents(
                events_pb2.PublishEventsRequest(events=batch), metadata=PUBLISHER
            )
        )
        == "events[1].tenant_id"
    )
    edge = "A" + "b.c_d-9" * 18 + "x" * 1  # 128 characters, every allowed kind
    assert len(edge) == 128
    published = await secured.events.PublishEvent(
        publish_request(tenant_id=edge), metadata=PUBLISHER
    )
    assert published.event.tenant_id == edge
    page = await secured.feed.ListEvents(feed_pb2.ListEventsRequest(tenant_id=edge), metadata=ADMIN)
    assert [e.id for e in page.events] == [published.event.id]


async def test_open_mode_refuses_non_loopback(make_server: ServerFactory) -> None:
    from webhook_grpc.app import StartupError

    with pytest.raises(StartupError, match="open"):
        await make_server(listen="0.0.0.0:0")
