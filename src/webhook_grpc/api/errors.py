"""The one mapping from domain errors to gRPC status codes (with google.rpc details)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc._cython import cygrpc
from grpc_status import rpc_status

from webhook_grpc.domain import errors

from .storable_text import require_storable_text
from .tracing import record_status

log = logging.getLogger(__name__)

_CODES: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.LimitExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
}


# Messages often quote the offending input. Statuses travel in trailing metadata, which clients
# refuse beyond 8-16 KiB, so a quoted 10 KB id would turn NOT_FOUND into RESOURCE_EXHAUSTED.
MAX_MESSAGE_BYTES = 512
MAX_FIELD_BYTES = 128


def status_for(error: errors.DomainError) -> grpc.Status:
    code = _CODES.get(type(error), grpc.StatusCode.FAILED_PRECONDITION)
    status = status_pb2.Status(code=code.value[0], message=clip(error.message, MAX_MESSAGE_BYTES))
    if isinstance(error, errors.InvalidArgument):
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=clip(error.field, MAX_FIELD_BYTES),
                        description=clip(error.description, MAX_MESSAGE_BYTES),
                    )
                ]
            )
        )
        status.details.append(detail)
    return rpc_status.to_status(status)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (on a character boundary), marked with '…'."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "…"


UNAVAILABLE = rpc_status.to_status(
    status_pb2.Status(
        code=code_pb2.UNAVAILABLE, message="the database is unavailable; retry with backoff"
    )
)
INTERNAL = rpc_status.to_status(
    status_pb2.Status(code=code_pb2.INTERNAL, message="internal error; it has been logged")
)


async def abort_for(error: BaseException, context: grpc.aio.ServicerContext[Any, Any]) -> NoReturn:
    """End the call with the status that `error` maps to (set on its span, when traced)."""
    if isinstance(error, errors.DomainError):
        status = status_for(error)
        record_status(status.code)
        await context.abort_with_status(status)
    if isinstance(error, errors.StorageUnavailable):
        log.warning("database unavailable: %s", error)
        record_status(UNAVAILABLE.code)
        await context.abort_with_status(UNAVAILABLE)
    log.exception("unexpected error in %s", type(error).__name__, exc_info=error)
    record_status(INTERNAL.code)
    await context.abort_with_status(INTERNAL)
    raise AssertionError("abort_with_status returned")  # pragma: no cover


Request = TypeVar("Request")
Response = TypeVar("Response")
Servicer = TypeVar("Servicer")
UnaryMethod = Callable[[Servicer, Request, Any], Awaitable[Response]]
StreamMethod = Callable[[Servicer, Request, Any], Awaitable[None]]


def unary(
    method: UnaryMethod[Servicer, Request, Response],
) -> UnaryMethod[Servicer, Request, Response]:
    """Wrap a unary servicer method so that every error leaves as its mapped status."""

    @functools.wraps(method)
    async def wrapper(self: Servicer, request: Request, context: Any) -> Response:
        try:
            _check_request(request)
            return await method(self, request, context)
        except Exception as error:
            if _is_grpc_abort(error):
                raise
            await abort_for(error, context)

    return wrapper


def streaming(
    method: StreamMethod[Servicer, Request],
) -> StreamMethod[Servicer, Request]:
    """Wrap a server-streaming servicer method like `unary`. The method writes its responses
    with `await context.write(...)`, which returns once the transport has taken each one: an
    async generator would leave the writing to grpc, where a write to a client that has gone
    cannot be told from a failure."""

    @functools.wraps(method)
    async def wrapper(self: Servicer, request: Request, context: Any) -> None:
        try:
            _check_request(request)
            await method(self, request, context)
        except Exception as error:
            if _is_grpc_abort(error):
                raise
            if isinstance(error, cygrpc.ExecuteBatchError):
                # A write failed because the call is over: its client went away or the server
                # is stopping. That is how streams end, not an error; grpc treats a cancelled
                # call the same way (logged at DEBUG, no status to send).
                log.debug("stream ended by its client: %s", error)
                raise asyncio.CancelledError from error
            await abort_for(error, context)

    return wrapper


def _check_request(request: object) -> None:
    # Rules every request shares, before any servicer code runs.
    if isinstance(request, Message):
        require_storable_text(request)


def _is_grpc_abort(error: BaseException) -> bool:
    # context.abort() raises grpc's own AbortError; it must pass through untouched.
    return isinstance(error, grpc.aio.AbortError)
