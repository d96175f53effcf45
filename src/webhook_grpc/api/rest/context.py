"""A grpc ServicerContext for servicer methods called over HTTP.

The servicers read the caller's token from the invocation metadata and end a call with
`abort_with_status` (api/errors.py) or `abort`; this context hands them the request's
`Authorization` header (or the principal of its portal session cookie) and records how the
call ended instead of sending it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import grpc

from webhook_grpc.domain.access import Principal
from webhook_grpc.domain.trace_context import TraceContext

from .status import RestError, from_grpc_status, rest_error

Metadata = tuple[tuple[str, str | bytes], ...]
Writer = Callable[[Any], Awaitable[None]]


class RestContext:
    def __init__(
        self,
        authorization: str | None,
        writer: Writer | None = None,
        session_principal: Principal | None = None,
        trace_context: TraceContext | None = None,
    ) -> None:
        self._metadata: Metadata = (
            (("authorization", authorization),) if authorization is not None else ()
        )
        if trace_context is not None:
            # The caller's traceparent, as gRPC metadata would carry it.
            self._metadata += tuple(trace_context.headers().items())
        self._writer = writer
        # Set for a portal session's call (cookie_auth.py); the Authenticator takes it as is.
        self.session_principal = session_principal
        self.error: RestError | None = None
        self.trailing_metadata: Sequence[tuple[str, str | bytes]] = ()

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        self.error = from_grpc_status(status)
        # grpc's own abort exception: the servicer wrappers (api/errors.py) let it pass.
        raise grpc.aio.AbortError()

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()
    ) -> NoReturn:
        self.error = rest_error(code, details)
        raise grpc.aio.AbortError()

    def set_trailing_metadata(self, trailing_metadata: Metadata) -> None:
        self.trailing_metadata = trailing_metadata

    def time_remaining(self) -> float | None:
        return None

    async def write(self, message: Any) -> None:
        if self._writer is None:
            raise RuntimeError("write() on a unary call")
        await self._writer(message)
