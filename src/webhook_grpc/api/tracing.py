"""Server spans: one per call of the API's own services, over gRPC (an interceptor) and over REST
(`server_span`, from api/rest/server.py), each a child of the caller's `traceparent`.

opentelemetry-instrumentation-grpc's aio interceptor is not used: it iterates every
server-streaming handler's result, so the feed's servicers, which write with `context.write`
and return nothing, fail with UNKNOWN; and it misses `abort_with_status`, how api/errors.py ends
calls. The status of a failed call is set on the span by api/errors.py, the one place that
chooses it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from webhook_grpc import tracing
from webhook_grpc.domain.trace_context import TraceContext

# The API's own services; health checks and reflection are not traced.
TRACED_PREFIX = "/webhooks.v1."
STATUS_CODE = "rpc.grpc.status_code"
Metadata = Iterable[tuple[str, str | bytes]]
# The codes that are the server's failure rather than the caller's (OpenTelemetry's rule).
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def trace_parent(context: Any) -> TraceContext | None:
    """The trace context a call's work continues: its server span's (tracing on), else the
    `traceparent` (and `tracestate`) the caller sent."""
    return tracing.current() or TraceContext.from_metadata(context.invocation_metadata())


def record_status(code: grpc.StatusCode) -> None:
    """Set the status a call ends with on its server span (when traced)."""
    span = trace.get_current_span()
    if span.is_recording():
        _set_status(span, code)


def _set_status(span: Span, code: grpc.StatusCode) -> None:
    span.set_attribute(STATUS_CODE, code.value[0])
    if code in _SERVER_ERRORS:
        span.set_status(Status(StatusCode.ERROR, code.name))


@contextmanager
def server_span(
    tracer: Tracer, name: str, caller: TraceContext | None, attributes: dict[str, Any]
) -> Iterator[Span]:
    with tracer.start_as_current_span(
        name,
        context=tracing.parent(caller),
        kind=SpanKind.SERVER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


class TracingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A server span around each unary-request call of the API's services."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.request_streaming or not method.startswith(TRACED_PREFIX):
            return handler
        service, _, name = method[1:].partition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._call(method, attributes, handler.unary_unary))
        if handler.unary_stream is not None:
            behaviour = handler.unary_stream
            if inspect.iscoroutinefunction(behaviour):
                wrapped = self._call(method, attributes, behaviour)
            else:
                wrapped = self._stream(method, attributes, behaviour)
            return handler._replace(unary_stream=wrapped)
        return handler

    def _call(
        self, name: str, attributes: dict[str, Any], behaviour: Callable[[Any, Any], Any]
    ) -> Callable[[Any, Any], Any]:
        async def handle(request: Any, context: Any) -> Any:
            caller = TraceContext.from_metadata(context.invocation_metadata())
            with (
                server_span(self._tracer, name, caller, attributes) as span,
                _ending(span),
            ):
                return await behaviour(request, context)

        return handle

    def _stream(
        self, name: str, attributes: dict[str, Any], behaviour: Callable[[Any, Any], Any]
    ) -> Callable[[Any, Any], Any]:
        async def handle(request: Any, context: Any) -> AsyncIterator[Any]:
            caller = TraceContext.from_metadata(context.invocation_metadata())
            with (
                server_span(self._tracer, name, caller, attributes) as span,
                _ending(span),
            ):
                async for response in behaviour(request, context):
                    yield response

        return handle


@contextmanager
def _ending(span: Span) -> Iterator[None]:
    """OK unless the call failed: an abort's status was set where it was chosen (errors.py)."""
    try:
        yield
    except asyncio.CancelledError:
        _set_status(span, grpc.StatusCode.CANCELLED)
        raise
    except grpc.aio.AbortError:
        raise
    except BaseException:
        _set_status(span, grpc.StatusCode.UNKNOWN)
        raise
    else:
        _set_status(span, grpc.StatusCode.OK)
