"""The generated protobuf messages and gRPC stubs of ``webhooks.v1``, for calls not wrapped by
`WebhooksClient` (e.g. ``DeliveryService``)::

    from webhook_grpc_client import v1

    stub = v1.deliveries_pb2_grpc.DeliveryServiceStub(client.channel)
    page = await stub.ListDeliveries(
        v1.deliveries_pb2.ListDeliveriesRequest(tenant_id="acme"), metadata=client.metadata
    )
"""

from webhook_grpc_client._gen.webhooks.v1 import (
    deliveries_pb2,
    deliveries_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    feed_pb2,
    feed_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)

__all__ = [
    "deliveries_pb2",
    "deliveries_pb2_grpc",
    "events_pb2",
    "events_pb2_grpc",
    "feed_pb2",
    "feed_pb2_grpc",
    "subscriptions_pb2",
    "subscriptions_pb2_grpc",
]
