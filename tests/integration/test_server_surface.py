"""What grpcurl relies on: health checking and server reflection."""

from __future__ import annotations

from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.server import RunningServer


async def test_health_serving(server: RunningServer) -> None:
    stub = health_pb2_grpc.HealthStub(server.channel)
    for service in ("", "webhooks.v1.EventService", "webhooks.v1.FeedService"):
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_every_service(server: RunningServer) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(server.channel)

    async def requests():  # type: ignore[no-untyped-def]
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        yield reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="webhooks.v1.SubscriptionService"
        )

    responses = [r async for r in stub.ServerReflectionInfo(requests())]
    names = {s.name for s in responses[0].list_services_response.service}
    assert {
        "webhooks.v1.EventService",
        "webhooks.v1.SubscriptionService",
        "webhooks.v1.FeedService",
        "webhooks.v1.DeliveryService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    assert responses[1].file_descriptor_response.file_descriptor_proto


async def test_reflection_v1_lists_and_describes_services(server: RunningServer) -> None:
    # grpcurl and buf curl ask for v1 first; its messages are v1alpha's on the wire.
    call = server.channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )

    async def requests():  # type: ignore[no-untyped-def]
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        yield reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="grpc.reflection.v1.ServerReflection"
        )

    responses = [r async for r in call(requests())]
    names = {s.name for s in responses[0].list_services_response.service}
    assert {
        "webhooks.v1.EventService",
        "webhooks.v1.FeedService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in responses[1].file_descriptor_response.file_descriptor_proto
    ]
    v1 = next(f for f in files if f.package == "grpc.reflection.v1")
    method = v1.service[0].method[0]
    assert (v1.service[0].name, method.name, method.input_type) == (
        "ServerReflection",
        "ServerReflectionInfo",
        ".grpc.reflection.v1.ServerReflectionRequest",
    )
