"""NUL and other control characters in event data behave the same on both backends.

PostgreSQL cannot hold NUL (U+0000) in text, nor a `\\u0000` escape anywhere it parses JSON, so
NUL anywhere in a request (Struct values and keys included) is the client's mistake:
INVALID_ARGUMENT naming the field path. Every other control character is stored and read back
as sent."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from tests.support.calls import CALL_TIMEOUT
from tests.support.factories import publish_request, struct
from tests.support.rpc import invalid_field, violated_fields
from tests.support.server import RunningServer
from webhook_grpc._gen.webhooks.v1 import events_pb2 as epb
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb

GADGET = "gadget.created"
GADGET_FIELDS = ("id", "name", "attrs.color.name", "attrs.tags", "attrs.rows.k", "attrs.a b")
CONTROLS = "\x01\t\n\r\x1b\x1f\x7f\x80\x9f"


async def register_gadget(server: RunningServer) -> None:
    """A type with nested fields declared, so that what is below them reaches storage."""
    await server.events.RegisterEventType(
        epb.RegisterEventTypeRequest(
            type=GADGET,
            fields=[
                epb.FieldRule(path=path, classification=epb.CLASSIFICATION_PUBLIC)
                for path in GADGET_FIELDS
            ],
        )
    )


async def feed_until(server: RunningServer, entity_id: str) -> list[epb.Event]:
    """The tenant's feed once it shows an event of `entity_id`: on PostgreSQL an event joins
    the feed only once every older transaction of the cluster has ended."""
    deadline = time.monotonic() + CALL_TIMEOUT
    while True:
        page = await server.feed.ListEvents(fpb.ListEventsRequest(tenant_id="acme", page_size=1000))
        if any(event.entity_id == entity_id for event in page.events):
            return list(page.events)
        assert time.monotonic() < deadline, f"no event of {entity_id!r} in the feed"
        await asyncio.sleep(0.05)


async def stored_events(server: RunningServer) -> list[epb.Event]:
    """Every stored event, ahead of a marker published now (the feed is gap-free in order)."""
    await server.events.PublishEvent(publish_request(entity_id="marker"))
    return [event for event in await feed_until(server, "marker") if event.entity_id != "marker"]


def gadget(attrs: Any) -> epb.PublishEventRequest:
    return publish_request(GADGET, "g1", {"id": "g1", "attrs": attrs})


async def test_nul_in_event_data_is_refused_naming_its_path(server: RunningServer) -> None:
    await register_gadget(server)
    cases: list[tuple[epb.PublishEventRequest, str]] = [
        (publish_request(data={"id": "p1", "name": "a\x00b"}), "data.name"),
        (publish_request(data={"id": "p\x001"}), "data.id"),
        (publish_request(previous={"selling_price": "1\x00"}), "previous.selling_price"),
        (gadget({"a\x00b": 1}), "data.attrs['a\\x00b']"),
        (gadget({"color": {"name": "x\x00"}}), "data.attrs.color.name"),
        (gadget({"tags": ["ok", "x\x00"]}), "data.attrs.tags[1]"),
        (gadget({"rows": [{"k": 1}, {"k": [{"\x00": None}]}]}), "data.attrs.rows[1].k[0]['\\x00']"),
        (gadget({"a b": "\x00"}), "data.attrs['a b']"),
    ]
    wrong = []
    for request, path in cases:
        try:
            await server.events.PublishEvent(request)
            wrong.append(f"{path}: accepted")
        except grpc.aio.AioRpcError as error:
            invalid = error.code() is grpc.StatusCode.INVALID_ARGUMENT
            if not invalid or violated_fields(error) != [path]:
                wrong.append(f"{path}: {error.code()} {error.details()}")
    assert not wrong, "\n".join(wrong)
    assert await stored_events(server) == []


async def test_a_batch_with_nul_in_one_event_stores_nothing(server: RunningServer) -> None:
    good = [publish_request(entity_id=f"p{i}") for i in range(499)]
    bad = publish_request(entity_id="p499", data={"id": "p499", "name": "a\x00b"})
    batch = epb.PublishEventsRequest(events=[*good, bad])
    assert await invalid_field(server.events.PublishEvents(batch)) == "events[499].data.name"
    assert await stored_events(server) == []


async def test_other_control_characters_are_stored_as_sent(server: RunningServer) -> None:
    await register_gadget(server)
    attrs = {"color": {"name": CONTROLS}, "tags": [CONTROLS, "x"], "rows": [{"k": CONTROLS}]}
    data = {"id": "g1", "name": CONTROLS, "attrs": attrs}
    request = publish_request(GADGET, "g1", data, previous={"name": CONTROLS})
    request.entity_id = f"g{CONTROLS}"
    request.idempotency_key = f"key{CONTROLS}"
    published = (await server.events.PublishEvent(request)).event
    [event] = await feed_until(server, request.entity_id)
    assert event == published
    assert event.entity_id == f"g{CONTROLS}"
    assert event.data == struct(data)
    assert event.previous == struct({"name": CONTROLS})
    repeated = await server.events.PublishEvent(request)
    assert repeated.duplicate and repeated.event.id == published.id
