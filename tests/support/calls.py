"""Calling any RPC by (service, method) and getting its status instead of an exception."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf.message import Message

from tests.support.server import RunningServer

CALL_TIMEOUT = 10.0


def stub(server: RunningServer, service: str) -> Any:
    return {
        "EventService": server.events,
        "SubscriptionService": server.subscriptions,
        "FeedService": server.feed,
        "DeliveryService": server.deliveries,
    }[service]


async def call_status(
    server: RunningServer,
    service: str,
    method: str,
    request: Message,
    auth: Sequence[tuple[str, str]] = (),
    timeout: float = CALL_TIMEOUT,
) -> tuple[grpc.StatusCode, Any]:
    """The status of one call (of a server stream: of its first message) and the response if
    OK, else the AioRpcError. A call that hangs ends as DEADLINE_EXCEEDED after `timeout`."""
    rpc = getattr(stub(server, service), method)
    try:
        if method == "StreamEvents":
            stream = rpc(request, timeout=timeout, metadata=tuple(auth))
            try:
                async for first in stream:
                    return grpc.StatusCode.OK, first
            finally:
                stream.cancel()
            return grpc.StatusCode.OK, None
        return grpc.StatusCode.OK, await rpc(request, timeout=timeout, metadata=tuple(auth))
    except grpc.aio.AioRpcError as error:
        return error.code(), error
