"""Undecodable requests are the client's mistake: INVALID_ARGUMENT, not UNKNOWN.

grpcio turns an exception from a request deserializer (corrupt wire format, invalid UTF-8 in a
string field, a `Struct` nested deeper than protobuf's recursion limit) into UNKNOWN before any
servicer code runs. This interceptor makes the deserializer return a marker instead, and the
wrapped handler answers the marker with INVALID_ARGUMENT. It needs to be installed on the server:
`grpc.aio.server(interceptors=[RequestDecodingGuard()])`."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from .errors import clip

MAX_REASON_BYTES = 256


@dataclass(frozen=True)
class _Undecodable:
    reason: str


async def _refuse(request: _Undecodable, context: Any) -> None:
    await context.abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        clip(f"the request message could not be decoded: {request.reason}", MAX_REASON_BYTES),
    )


def _safe(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, UnicodeDecodeError, RecursionError) as error:
            return _Undecodable(str(error) or type(error).__name__)

    return deserialize


def _unary(behaviour: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    async def handle(request: Any, context: Any) -> Any:
        if isinstance(request, _Undecodable):
            await _refuse(request, context)
        result = behaviour(request, context)
        return await result if inspect.isawaitable(result) else result

    return handle


def _streaming(behaviour: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    if inspect.iscoroutinefunction(behaviour):
        # A handler that writes with context.write must stay a coroutine function: grpc
        # picks the calling convention by that.
        return _unary(behaviour)

    async def handle(request: Any, context: Any) -> AsyncIterator[Any]:
        if isinstance(request, _Undecodable):
            await _refuse(request, context)
        responses = behaviour(request, context)
        if inspect.isasyncgen(responses):
            async for response in responses:
                yield response
        else:
            for response in responses:
                yield response

    return handle


class RequestDecodingGuard(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps every unary-request handler (unary-unary and server-streaming)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        deserializer = _safe(handler.request_deserializer)
        if handler.unary_unary is not None:
            return handler._replace(
                request_deserializer=deserializer, unary_unary=_unary(handler.unary_unary)
            )
        if handler.unary_stream is not None:
            return handler._replace(
                request_deserializer=deserializer, unary_stream=_streaming(handler.unary_stream)
            )
        return handler
