"""Requests that cannot be decoded at all (corrupt wire format, invalid UTF-8 in a string field,
a Struct nested deeper than protobuf's recursion limit) are the client's mistake: they must get
INVALID_ARGUMENT, not UNKNOWN (SPEC §3 Errors), on every RPC."""

from __future__ import annotations

from typing import Any

import grpc

from tests.conftest import ServerFactory
from tests.support import hostile
from tests.support.calls import CALL_TIMEOUT
from tests.support.factories import publish_request
from tests.support.tokens import ADMIN, TOKENS
from webhook_grpc._gen.webhooks.v1 import events_pb2 as epb
from webhook_grpc._gen.webhooks.v1 import events_pb2_grpc, feed_pb2_grpc
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb
from webhook_grpc.api.decoding import RequestDecodingGuard


def _deeply_nested(request: epb.PublishEventRequest, depth: int = 100) -> None:
    value: dict[str, Any] = {"id": "deep"}
    for _ in range(depth):
        value = {"n": value}
    # update() builds the Struct in place; copying a message this deep would itself fail to
    # decode on the client.
    request.data.update(value)


def _deep_publish() -> bytes:
    request = publish_request()
    request.data.Clear()
    _deeply_nested(request)
    return request.SerializeToString()


def _deep_batch() -> bytes:
    batch = epb.PublishEventsRequest()
    item = batch.events.add(tenant_id="acme", type="product.created", entity_id="p")
    _deeply_nested(item)
    return batch.SerializeToString()


def _surrogate_in_struct() -> bytes:
    # What a client that encodes a lone UTF-16 surrogate naively (CESU-8) would send: Python's
    # protobuf cannot even build it, so the bytes are swapped in after encoding.
    request = publish_request(data={"id": "p", "name": "@@@"})
    return request.SerializeToString().replace(b"@@@", "\ud800".encode(errors="surrogatepass"))


ALL_METHODS = [f"/webhooks.v1.{service}/{method}" for service, method in sorted(hostile.REQUESTS)]
PUBLISH = "/webhooks.v1.EventService/PublishEvent"
STREAM = "/webhooks.v1.FeedService/StreamEvents"


def undecodable(methods: list[str]) -> list[tuple[str, str, bytes]]:
    """(method, what is wrong, body): corrupt bytes and invalid UTF-8 for every method; a
    Struct nested 100 levels for the two that take one; a lone surrogate in a Struct."""
    cases = [
        (path, name, body)
        for path in methods
        for name, body in (
            ("corrupt wire format", b"\xff\xff\xff\xff"),
            # Field 1 (a string, or a message that then fails to decode) holding b"\xc3\x28".
            ("invalid UTF-8 in a string", b"\x0a\x02\xc3\x28"),
        )
    ]
    deep = {PUBLISH: _deep_publish(), "/webhooks.v1.EventService/PublishEvents": _deep_batch()}
    cases += [
        (path, "Struct nested 100 levels", body) for path, body in deep.items() if path in methods
    ]
    if PUBLISH in methods:
        cases.append((PUBLISH, "a lone surrogate in a Struct string", _surrogate_in_struct()))
    return cases


async def _raw_status(channel: grpc.aio.Channel, path: str, body: bytes) -> grpc.StatusCode:
    try:
        if path.endswith("StreamEvents"):
            stream = channel.unary_stream(path)(body, timeout=CALL_TIMEOUT, metadata=ADMIN)
            async for _ in stream:
                break
            stream.cancel()
        else:
            await channel.unary_unary(path)(body, timeout=CALL_TIMEOUT, metadata=ADMIN)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_undecodable_requests_are_invalid_argument(make_server: ServerFactory) -> None:
    server = await make_server(tokens=TOKENS)
    wrong = []
    for path, name, body in undecodable(ALL_METHODS):
        code = await _raw_status(server.channel, path, body)
        if code is not grpc.StatusCode.INVALID_ARGUMENT:
            wrong.append(f"{path} with {name}: {code}")
    # Still serving.
    published = await server.events.PublishEvent(publish_request(), metadata=ADMIN, timeout=5)
    assert published.event.id
    assert not wrong, "\n".join(wrong)


class _Events(events_pb2_grpc.EventServiceServicer):
    async def PublishEvent(self, request: epb.PublishEventRequest, context: Any) -> Any:
        return epb.PublishEventResponse(event=epb.Event(entity_id=request.entity_id))


class _Feed(feed_pb2_grpc.FeedServiceServicer):
    async def StreamEvents(self, request: fpb.StreamEventsRequest, context: Any) -> Any:
        yield fpb.StreamEventsResponse(cursor=request.tenant_id)


async def test_decoding_guard_answers_undecodable_requests_with_invalid_argument() -> None:
    """The fix app.py needs, proven on a bare server: undecodable requests get
    INVALID_ARGUMENT, decodable ones still reach the servicer (unary and streaming)."""
    server = grpc.aio.server(interceptors=[RequestDecodingGuard()])
    events_pb2_grpc.add_EventServiceServicer_to_server(_Events(), server)
    feed_pb2_grpc.add_FeedServiceServicer_to_server(_Feed(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for path, name, body in undecodable([PUBLISH, STREAM]):
                code = await _raw_status(channel, path, body)
                assert code is grpc.StatusCode.INVALID_ARGUMENT, f"{path} with {name}: {code}"
            published = await events_pb2_grpc.EventServiceStub(channel).PublishEvent(
                publish_request(entity_id="reached"), timeout=5
            )
            assert published.event.entity_id == "reached"
            stream = feed_pb2_grpc.FeedServiceStub(channel).StreamEvents(
                fpb.StreamEventsRequest(tenant_id="acme"), timeout=5
            )
            assert [m.cursor async for m in stream] == ["acme"]
    finally:
        await server.stop(None)
