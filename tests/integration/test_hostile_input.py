"""Hostile input to every RPC of the four services (issue 8).

Invariants, on both backends: a hostile request never gets INTERNAL or UNKNOWN and never hangs
(each call has a deadline; DEADLINE_EXCEEDED counts as a hang); the server keeps serving; rows
stored before the fuzz read back identically, and every event the fuzz got acknowledged is in
its tenant's feed.

The fuzzing server runs without a dispatcher, so nothing a fuzzed subscription names is ever
contacted. Hypothesis runs in a worker thread and sends each call to the test's event loop,
where the server lives."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import ServerFactory
from tests.support import hostile
from tests.support.calls import CALL_TIMEOUT, call_status
from tests.support.factories import publish, publish_request, struct, subscribe, wait_delivery
from tests.support.receiver import Receiver
from tests.support.rpc import metadata, violated_fields
from tests.support.server import RunningServer
from tests.support.tokens import ACME, ADMIN, PUBLISHER, TOKENS
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import events_pb2 as epb
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb
from webhook_grpc.app import Roles

FUZZ_EXAMPLES = 800  # about 10 s on an idle machine
# Hypothesis runs of FUZZ_ROUND examples follow one another until FUZZ_EXAMPLES have run or
# FUZZ_BUDGET seconds have passed, so a loaded machine runs fewer examples rather than failing.
FUZZ_ROUND = 50
FUZZ_BUDGET = 60.0
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}

# The first two are drawn most of the time (so calls get past authentication); the rest
# exercise it.
CREDENTIALS: list[tuple[str, tuple[tuple[str, str], ...]]] = [
    ("admin", ADMIN),
    ("tenant", ACME),
    ("publisher", PUBLISHER),
    ("none", ()),
    ("unknown token", metadata("nope")),
    ("basic", (("authorization", "Basic YWRtaW46YWRtaW4="),)),
    ("empty bearer", (("authorization", "Bearer "),)),
    ("huge token", metadata("x" * 4000)),
]
SENTINEL_TENANT = "sentinel-tenant-5b1c"
SENTINEL_TYPE = "sentinelthing.created"
SENTINEL_DATA: dict[str, Any] = {
    "id": "st_1",
    "name": "Ünïcødé ☃ 😀 'quoted' \"double\" \\ back",
    "nested": {"depth": {"list": [1, 2.5, None, True, "x"]}},
    "empty": {},
    "secret_notes": "never stored",
}


@dataclass
class Stored:
    """What existed before the fuzz, and what the fuzz got acknowledged."""

    sentinel_event: epb.Event
    sentinel_subscription: spb.Subscription
    sentinel_delivery: dpb.Delivery
    known: hostile.Known
    acknowledged: dict[str, set[str]] = field(default_factory=dict)


def describe(service: str, method: str, request: Message) -> str:
    text = str(request)
    return f"{service}/{method} {text[:600]}{'…' if len(text) > 600 else ''}"


def acceptable(code: grpc.StatusCode, outcome: Any) -> bool:
    if code in NEVER:
        return False
    # A quoted input too large for the trailers turns the real status into this on the client.
    return not (code is grpc.StatusCode.RESOURCE_EXHAUSTED and "metadata size" in outcome.details())


async def register_public(server: RunningServer, type_: str, paths: Sequence[str]) -> None:
    fields = [epb.FieldRule(path=p, classification=epb.CLASSIFICATION_PUBLIC) for p in paths]
    await server.events.RegisterEventType(
        epb.RegisterEventTypeRequest(type=type_, fields=fields), metadata=ADMIN
    )


async def seed(make_server: ServerFactory, receiver: Receiver) -> Stored:
    """Rows the fuzz must not corrupt (tenant SENTINEL_TENANT, never offered to admins), and
    rows it may act on (tenant acme), each with a delivered delivery."""
    server = await make_server()  # open: the factories send no token
    await register_public(server, SENTINEL_TYPE, ("id", "name", "nested", "empty"))
    await register_public(server, hostile.NESTED_TYPE, hostile.NESTED_FIELDS)
    sentinel_sub = await server.subscriptions.CreateSubscription(
        spb.CreateSubscriptionRequest(
            tenant_id=SENTINEL_TENANT,
            url=receiver.url("/sentinel"),
            event_patterns=["sentinelthing.*"],
            description="do not touch — ☃",
            metadata={"owner": "hostile-input test", "ünï": "cødé"},
        ),
        metadata=ADMIN,
    )
    request = publish_request(
        SENTINEL_TYPE, "st_1", SENTINEL_DATA, tenant_id=SENTINEL_TENANT, previous={"name": "old"}
    )
    request.occurred_at.FromJsonString("2026-11-28T10:00:00.123456Z")
    sentinel = (await server.events.PublishEvent(request, metadata=ADMIN)).event
    acme_sub = await subscribe(server, receiver.url("/acme"), ["product.*"])
    acme_event = await publish(server)
    deliveries = await server.deliveries.ListDeliveries(
        dpb.ListDeliveriesRequest(tenant_id=SENTINEL_TENANT), metadata=ADMIN
    )
    acme_deliveries = await server.deliveries.ListDeliveries(
        dpb.ListDeliveriesRequest(tenant_id="acme"), metadata=ADMIN
    )
    ids = [d.id for d in [*deliveries.deliveries, *acme_deliveries.deliveries]]
    for delivery_id in ids:
        await wait_delivery(server, delivery_id)
    await server.stop()

    viewer = await make_server(roles=Roles(dispatcher=False))
    await eventually_in_feed(viewer, SENTINEL_TENANT, {sentinel.id})
    feed = await viewer.feed.ListEvents(
        fpb.ListEventsRequest(tenant_id=SENTINEL_TENANT), metadata=ADMIN
    )
    [sentinel_event] = feed.events
    [sentinel_delivery_id] = [d.id for d in deliveries.deliveries]
    sentinel_delivery = await viewer.deliveries.GetDelivery(
        dpb.GetDeliveryRequest(id=sentinel_delivery_id), metadata=ADMIN
    )
    sentinel_subscription = await viewer.subscriptions.GetSubscription(
        spb.GetSubscriptionRequest(id=sentinel_sub.subscription.id), metadata=ADMIN
    )
    await viewer.stop()
    assert sentinel_delivery.delivery.status == dpb.DELIVERY_STATUS_SUCCEEDED
    assert "secret_notes" not in sentinel_event.data.fields
    return Stored(
        sentinel_event=sentinel_event,
        sentinel_subscription=sentinel_subscription.subscription,
        sentinel_delivery=sentinel_delivery.delivery,
        known=hostile.Known(
            subscription_ids=[acme_sub.subscription.id],
            delivery_ids=[d.id for d in acme_deliveries.deliveries],
            event_ids=[acme_event.id],
            cursors=[acme_event.cursor],
            foreign=[
                sentinel_sub.subscription.id,
                sentinel_delivery_id,
                sentinel_event.id,
                sentinel_event.cursor,
            ],
        ),
    )


async def check_stored(server: RunningServer, stored: Stored) -> None:
    """Nothing stored before the fuzz changed; every acknowledged event is in its feed."""
    feed = await server.feed.ListEvents(
        fpb.ListEventsRequest(tenant_id=SENTINEL_TENANT), metadata=ADMIN
    )
    assert list(feed.events) == [stored.sentinel_event]
    got = await server.subscriptions.GetSubscription(
        spb.GetSubscriptionRequest(id=stored.sentinel_subscription.id), metadata=ADMIN
    )
    assert got.subscription == stored.sentinel_subscription
    delivery = await server.deliveries.GetDelivery(
        dpb.GetDeliveryRequest(id=stored.sentinel_delivery.id), metadata=ADMIN
    )
    assert delivery.delivery == stored.sentinel_delivery
    for tenant, event_ids in stored.acknowledged.items():
        await eventually_in_feed(server, tenant, event_ids)


async def feed_ids(server: RunningServer, tenant: str, entity_id: str = "") -> set[str]:
    seen: set[str] = set()
    cursor = ""
    while True:
        page = await server.feed.ListEvents(
            fpb.ListEventsRequest(
                tenant_id=tenant, after_cursor=cursor, page_size=1000, entity_id=entity_id
            ),
            metadata=ADMIN,
            timeout=CALL_TIMEOUT,
        )
        seen.update(event.id for event in page.events)
        cursor = page.next_cursor
        if not page.has_more:
            return seen


async def eventually_in_feed(
    server: RunningServer, tenant: str, event_ids: set[str], entity_id: str = ""
) -> None:
    # On PostgreSQL an event joins the feed once every older transaction has ended.
    deadline = time.monotonic() + CALL_TIMEOUT
    while missing := event_ids - await feed_ids(server, tenant, entity_id):
        assert time.monotonic() < deadline, f"{sorted(missing)} missing from {tenant!r}'s feed"
        await asyncio.sleep(0.05)


async def check_serving(server: RunningServer) -> None:
    health = health_pb2_grpc.HealthStub(server.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    request = publish_request(entity_id=f"after-{time.monotonic_ns()}")
    event = (await server.events.PublishEvent(request, metadata=ADMIN, timeout=CALL_TIMEOUT)).event
    await eventually_in_feed(server, "acme", {event.id}, entity_id=request.entity_id)


async def test_fuzzed_requests_never_fail_internally(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    stored = await seed(make_server, receiver)
    server = await make_server(tokens=TOKENS, roles=Roles(dispatcher=False), feed_heartbeat="100ms")
    loop = asyncio.get_running_loop()
    tenants = hostile.texts_or("acme", "globex")
    contexts = {
        with_foreign: hostile.Context(tenants, stored.known, with_foreign)
        for with_foreign in (False, True)
    }

    async def one(service: str, method: str, request: Message, auth: Any) -> None:
        code, outcome = await call_status(server, service, method, request, auth)
        assert acceptable(code, outcome), (
            f"{code} for {describe(service, method, request)}: "
            f"{getattr(outcome, 'details', lambda: '')()}"
        )
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            # SPEC §3: bad input names the field (google.rpc.BadRequest).
            assert len(violated_fields(outcome)) == 1, describe(service, method, request)
        if code is grpc.StatusCode.OK and method in ("PublishEvent", "PublishEvents"):
            events = [outcome.event] if method == "PublishEvent" else outcome.events
            # An event with no cursor was answered but withheld: its every change is unshareable.
            for event in (e for e in events if e.cursor):
                stored.acknowledged.setdefault(event.tenant_id, set()).add(event.id)

    # No shrinking: each step is a call to a server whose state the earlier calls changed, so
    # it is slow and rarely simpler; the first failing call is reported as it was drawn.
    @settings(
        max_examples=FUZZ_ROUND,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        role, auth = data.draw(
            hostile.mostly(st.sampled_from(CREDENTIALS[:2]), st.sampled_from(CREDENTIALS[2:])),
            label="caller",
        )
        # An admin may legitimately change any row, so only others get the sentinel's ids.
        context = contexts[role != "admin"]
        service, method, request = data.draw(hostile.calls(context), label="call")
        future = asyncio.run_coroutine_threadsafe(one(service, method, request, auth), loop)
        future.result(timeout=CALL_TIMEOUT + 5)

    def fuzz_within_budget() -> None:
        # No new round starts past the budget, so the test ends well before pytest's timeout.
        stop_at = time.monotonic() + FUZZ_BUDGET
        for _ in range(FUZZ_EXAMPLES // FUZZ_ROUND):
            if time.monotonic() >= stop_at:
                return
            fuzz()

    await asyncio.to_thread(fuzz_within_budget)
    await check_serving(server)
    await check_stored(server, stored)


def _nan_struct() -> struct_pb2.Struct:
    value = struct({"id": "p"})
    value.fields["price"].number_value = float("nan")
    return value


def _publish(**fields: Any) -> epb.PublishEventRequest:
    request = publish_request()
    for name, value in fields.items():
        if isinstance(value, Message):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


async def test_known_hostile_requests_get_the_right_status(make_server: ServerFactory) -> None:
    """A table of requests that once failed, or easily could, with the exact status expected
    (and, for INVALID_ARGUMENT, the field named)."""
    server = await make_server(tokens=TOKENS)
    event = (await server.events.PublishEvent(publish_request(), metadata=ADMIN)).event
    other = await server.events.PublishEvent(publish_request(tenant_id="globex"), metadata=ADMIN)
    inf = struct({"x": 1})
    inf.fields["x"].number_value = float("inf")
    batch = epb.PublishEventsRequest(events=[publish_request(), publish_request()])
    batch.events[1].data.fields["price"].number_value = float("-inf")
    year_one = epb.PublishEventRequest()
    year_one.CopyFrom(publish_request())
    year_one.occurred_at.seconds = -62_135_596_800
    end_of_time = epb.PublishEventRequest()
    end_of_time.CopyFrom(publish_request())
    end_of_time.occurred_at.FromJsonString("9999-12-31T23:59:59.999999999Z")
    flipped = event.cursor[:-1] + ("B" if event.cursor[-1] != "B" else "C")
    ok, invalid = grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT
    not_found = grpc.StatusCode.NOT_FOUND
    cases: list[tuple[str, str, Message, grpc.StatusCode, str | None]] = [
        ("EventService", "PublishEvent", _publish(data=_nan_struct()), invalid, "data"),
        ("EventService", "PublishEvent", _publish(previous=inf), invalid, "previous"),
        ("EventService", "PublishEvents", batch, invalid, "events[1].data"),
        ("EventService", "PublishEvent", _publish(entity_id="p\x00"), invalid, "entity_id"),
        ("EventService", "PublishEvent", _publish(idempotency_key="\x00"), invalid, None),
        ("EventService", "PublishEvent", _publish(tenant_id="a\x00"), invalid, "tenant_id"),
        ("EventService", "PublishEvent", year_one, ok, None),
        ("EventService", "PublishEvent", end_of_time, ok, None),
        (
            "EventService",
            "PublishEvents",
            epb.PublishEventsRequest(events=[publish_request()] * 501),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            None,
        ),
        (
            "EventService",
            "RegisterEventType",
            epb.RegisterEventTypeRequest(type="a" * 65 + ".b"),
            invalid,
            "type",
        ),
        (
            "EventService",
            "RegisterEventType",
            epb.RegisterEventTypeRequest(type="fuzz.x", description="\x00"),
            invalid,
            "description",
        ),
        (
            "EventService",
            "RegisterEventType",
            epb.RegisterEventTypeRequest(
                type="fuzz.x", fields=[epb.FieldRule(path="id", classification=99)]
            ),
            invalid,
            "fields[0].classification",
        ),
        ("EventService", "ListEventTypes", epb.ListEventTypesRequest(entity="\x00"), invalid, None),
        (
            "SubscriptionService",
            "GetSubscription",
            spb.GetSubscriptionRequest(id="x" * 1_000_000),
            not_found,
            None,
        ),
        (
            "SubscriptionService",
            "GetSubscription",
            spb.GetSubscriptionRequest(id="sub_\x00"),
            invalid,
            "id",
        ),
        (
            "SubscriptionService",
            "CreateSubscription",
            spb.CreateSubscriptionRequest(
                tenant_id="acme",
                url="http://127.0.0.1:9/",
                event_patterns=["*"],
                description="\x00",
            ),
            invalid,
            "description",
        ),
        (
            "SubscriptionService",
            "CreateSubscription",
            spb.CreateSubscriptionRequest(
                tenant_id="acme", url="http://127.0.0.1:9/", event_patterns=["*"], payload_mode=7
            ),
            invalid,
            "payload_mode",
        ),
        (
            "SubscriptionService",
            "ListSubscriptions",
            spb.ListSubscriptionsRequest(tenant_id="acme", status=99),
            invalid,
            "status",
        ),
        (
            "SubscriptionService",
            "ListSubscriptions",
            spb.ListSubscriptionsRequest(
                tenant_id="acme", page_token=_token("0001-01-01T00:00:00+14:00|sub_x")
            ),
            invalid,
            "page_token",
        ),
        (
            "SubscriptionService",
            "ListSubscriptions",
            spb.ListSubscriptionsRequest(tenant_id="acme", page_size=2**31 - 1),
            invalid,
            "page_size",
        ),
        (
            "SubscriptionService",
            "UpdateSubscription",
            spb.UpdateSubscriptionRequest(
                subscription=spb.Subscription(id="sub_x"), update_mask={"paths": ["*"]}
            ),
            invalid,
            "update_mask",
        ),
        (
            "SubscriptionService",
            "UpdateSubscription",
            spb.UpdateSubscriptionRequest(
                subscription=spb.Subscription(id="sub_x"), update_mask={"paths": ["url\x00"]}
            ),
            invalid,
            "update_mask.paths[0]",
        ),
        (
            "SubscriptionService",
            "RotateSubscriptionSecret",
            spb.RotateSubscriptionSecretRequest(id="sub_x", grace_period={"seconds": 2**62}),
            invalid,
            "grace_period",
        ),
        (
            "FeedService",
            "ListEvents",
            fpb.ListEventsRequest(tenant_id="acme", page_size=-1),
            invalid,
            "page_size",
        ),
        (
            "FeedService",
            "ListEvents",
            fpb.ListEventsRequest(tenant_id="acme", entity_id="\x00"),
            invalid,
            "entity_id",
        ),
        (
            "FeedService",
            "ListEvents",
            fpb.ListEventsRequest(tenant_id="acme", after_cursor=flipped),
            invalid,
            "after_cursor",
        ),
        (
            "FeedService",
            "ListEvents",
            fpb.ListEventsRequest(tenant_id="acme", after_cursor=other.event.cursor),
            invalid,
            "after_cursor",
        ),
        (
            "FeedService",
            "StreamEvents",
            fpb.StreamEventsRequest(tenant_id="acme", after_cursor="A" * 1_000_000),
            invalid,
            "after_cursor",
        ),
        (
            "FeedService",
            "StreamEvents",
            fpb.StreamEventsRequest(tenant_id="acme", event_patterns=["nope.nothing"]),
            invalid,
            "event_patterns[0]",
        ),
        (
            "DeliveryService",
            "ListDeliveries",
            dpb.ListDeliveriesRequest(
                tenant_id="acme", page_token=_token("2026-01-01T00:00:00+00:00|dlv_\x00")
            ),
            invalid,
            "page_token",
        ),
        (
            "DeliveryService",
            "ListDeliveries",
            dpb.ListDeliveriesRequest(tenant_id="acme", status=-1),
            invalid,
            "status",
        ),
        (
            "DeliveryService",
            "GetDelivery",
            dpb.GetDeliveryRequest(id="'; DROP TABLE deliveries; --" * 4000),
            not_found,
            None,
        ),
        (
            "DeliveryService",
            "RecoverFailedDeliveries",
            dpb.RecoverFailedDeliveriesRequest(
                tenant_id="acme", subscription_id="sub_x", since={"seconds": 2**62}
            ),
            invalid,
            "since",
        ),
        (
            "DeliveryService",
            "ReplayEvents",
            dpb.ReplayEventsRequest(
                tenant_id="acme", subscription_id="sub_x", until={"seconds": -(2**62)}
            ),
            invalid,
            "until",
        ),
    ]
    wrong = []
    for service, method, request, expected, field_name in cases:
        code, outcome = await call_status(server, service, method, request, ADMIN)
        fields = violated_fields(outcome) if code is invalid else []
        if code is not expected or (field_name is not None and fields != [field_name]):
            detail = outcome.details() if code is not ok else ""
            wrong.append(f"{describe(service, method, request)[:200]}: {code} {fields} {detail}")
    assert not wrong, "\n".join(wrong)
    await check_serving(server)
