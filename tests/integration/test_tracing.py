"""Tracing: a publisher's trace context travels with its event through the database to the
delivery POST (`traceparent`), with spans on the way when tracing is on, both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import aiohttp
import grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import ServerFactory
from tests.support.factories import publish_request, subscribe
from tests.support.receiver import Receiver
from tests.support.rpc import rpc_error
from webhook_grpc._gen.webhooks.v1 import feed_pb2
from webhook_grpc.tracing import Tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PUBLISHER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PUBLISHER_SPAN}-01"
TRACESTATE = "vendor=opaque"
# Values that must never reach a span: the event's data, the secret, the URL's path and query.
PAYLOAD_MARKER = "payload-marker-9f3c"
URL_SECRET = "url-token-77e1"


class Recorded:
    """A Tracing whose finished spans are kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracing = Tracing(provider)

    @property
    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def named(self, name: str) -> ReadableSpan:
        [span] = [s for s in self.spans if s.name == name]
        return span


def span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.span_id:016x}"


def trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


def parent_id(span: ReadableSpan) -> str:
    assert span.parent is not None
    return f"{span.parent.span_id:016x}"


def attribute_texts(spans: Sequence[ReadableSpan]) -> Iterator[str]:
    for span in spans:
        for value in (span.attributes or {}).values():
            yield from (str(v) for v in value) if isinstance(value, tuple) else (str(value),)


async def test_a_publishers_trace_reaches_the_post_through_the_database(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    publishing = Recorded()
    api = await make_server(tracing=publishing.tracing, serve_dispatcher=False)
    created = await subscribe(api, receiver.url(f"/hooks/{URL_SECRET}?token={URL_SECRET}"))
    request = publish_request(data={"id": "prod_1", "name": PAYLOAD_MARKER})
    response = await api.events.PublishEvent(
        request, metadata=(("traceparent", TRACEPARENT), ("tracestate", TRACESTATE))
    )
    await api.stop()

    # The publisher's call: a server span, its child `publish`, and the insert under that.
    server = publishing.named("/webhooks.v1.EventService/PublishEvent")
    publish = publishing.named("publish")
    insert = publishing.named("INSERT events")
    assert server.kind is SpanKind.SERVER
    assert (trace_id(server), parent_id(server)) == (TRACE_ID, PUBLISHER_SPAN)
    assert (server.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    assert (trace_id(publish), parent_id(publish)) == (TRACE_ID, span_id(server))
    assert parent_id(insert) == span_id(publish)
    assert (publish.attributes or {})["webhook.event_id"] == response.event.id

    # Another process delivers: the context can only have come from the database.
    delivering = Recorded()
    await make_server(tracing=delivering.tracing)
    await receiver.wait_count(1)
    [received] = receiver.received
    headers = {k.lower(): v for k, v in received.headers.items()}
    deliver = delivering.named("deliver")
    post = delivering.named("POST")
    assert (trace_id(deliver), parent_id(deliver)) == (TRACE_ID, span_id(publish))
    assert (trace_id(post), parent_id(post)) == (TRACE_ID, span_id(deliver))
    assert post.kind is SpanKind.CLIENT
    assert headers["traceparent"] == f"00-{TRACE_ID}-{span_id(post)}-01"
    assert headers["tracestate"] == TRACESTATE
    attributes = deliver.attributes or {}
    assert attributes["webhook.event_type"] == "product.created"
    assert attributes["webhook.subscription_id"] == created.subscription.id
    assert attributes["webhook.attempt"] == 1
    assert attributes["http.response.status_code"] == 200
    assert (post.attributes or {})["http.response.status_code"] == 200

    texts = list(attribute_texts([*publishing.spans, *delivering.spans]))
    for secret in (PAYLOAD_MARKER, URL_SECRET, created.secret):
        assert not [text for text in texts if secret in text]


async def test_with_tracing_off_the_publishers_context_is_sent_on_as_it_came(
    make_server: ServerFactory, receiver: Receiver
) -> None:
    server = await make_server()
    await subscribe(server, receiver.url())
    async with aiohttp.ClientSession() as http:
        for headers in ({"traceparent": TRACEPARENT, "tracestate": TRACESTATE}, {}):
            async with http.post(
                f"{server.http}/api/v1/webhooks/events",
                json={"tenant_id": "acme", "type": "product.created", "entity_id": "p1"},
                headers=headers,
            ) as reply:
                assert reply.status == 201, await reply.text()
    await receiver.wait_count(2)
    sent = [{k.lower(): v for k, v in r.headers.items()} for r in receiver.received]
    traced = [h for h in sent if "traceparent" in h]
    assert [(h["traceparent"], h["tracestate"]) for h in traced] == [(TRACEPARENT, TRACESTATE)]
    assert len(sent) == 2


async def test_traced_rest_calls_failed_calls_and_feed_streams(
    make_server: ServerFactory,
) -> None:
    recorded = Recorded()
    server = await make_server(tracing=recorded.tracing)
    # A feed stream still streams with the tracing interceptor in front of it.
    call = server.feed.StreamEvents(feed_pb2.StreamEventsRequest(tenant_id="acme"))
    await server.events.PublishEvent(publish_request())
    message = await asyncio.wait_for(call.read(), 10)
    assert message is not grpc.aio.EOF
    call.cancel()
    # A refused call carries its status.
    await rpc_error(
        server.events.PublishEvent(publish_request(type="nope.created")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    # REST: a server span of its own, a child of the caller's.
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.http}/api/v1/webhooks/events",
            json={"tenant_id": "acme", "type": "product.created", "entity_id": "p9"},
            headers={"traceparent": TRACEPARENT},
        ) as reply,
    ):
        assert reply.status == 201
    rest = recorded.named("POST /api/v1/webhooks/events")
    assert (trace_id(rest), parent_id(rest)) == (TRACE_ID, PUBLISHER_SPAN)
    assert (rest.attributes or {})["http.response.status_code"] == 201
    publishes = [s for s in recorded.spans if s.name == "publish" and s.parent is not None]
    assert [parent_id(s) for s in publishes if trace_id(s) == TRACE_ID] == [span_id(rest)]
    failed = [
        s
        for s in recorded.spans
        if (s.attributes or {}).get("rpc.grpc.status_code")
        == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    ]
    assert [s.name for s in failed] == ["/webhooks.v1.EventService/PublishEvent"]
    await server.stop()
    streams = [s for s in recorded.spans if s.name == "/webhooks.v1.FeedService/StreamEvents"]
    assert len(streams) == 1
