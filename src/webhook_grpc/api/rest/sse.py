"""StreamEvents as Server-Sent Events: the same servicer method as gRPC, its messages written
as SSE frames (`id:` the event's cursor, `event:` its type, `data:` its JSON; idle heartbeats
as comments carrying the cursor). A browser's EventSource resumes with `Last-Event-ID`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from aiohttp import web

from webhook_grpc.domain.access import Principal

from .context import RestContext
from .status import RestError
from .transcode import response_json

# Errors found before the stream starts (token, limits, arguments) answer with their HTTP
# status, so that EventSource does not retry them. The stream starts at its first message or
# after this long, whichever comes first, so that a client waiting on an idle feed gets its
# headers; an error after that (OUT_OF_RANGE always) is an `event: error` that ends the stream.
HEADERS_AFTER = 0.5

StreamMethod = Callable[[Any, RestContext], Awaitable[None]]
ErrorResponse = Callable[[RestError], web.Response]


def render(message: Any) -> bytes:
    """One StreamEventsResponse as SSE text: a frame per event, or a heartbeat comment."""
    if not message.events:
        return f": heartbeat {message.heartbeat.cursor or message.cursor}\n\n".encode()
    return "".join(
        f"id: {event.cursor}\nevent: {event.type}\ndata: {response_json(event)}\n\n"
        for event in message.events
    ).encode()


def resume(request: Any, headers: Mapping[str, str], query: Mapping[str, str]) -> None:
    """A reconnecting EventSource continues after its `Last-Event-ID` (the last event's
    cursor), unless the query names `after_cursor`."""
    last_event_id = headers.get("Last-Event-ID", "").strip()
    if last_event_id and "after_cursor" not in query:
        request.after_cursor = last_event_id


async def serve(
    http_request: web.Request,
    request: Any,
    method: StreamMethod,
    authorization: str | None,
    session_principal: Principal | None,
    error_response: ErrorResponse,
    closing: asyncio.Event,
) -> web.StreamResponse:
    """Run the stream until its client leaves, it fails, or the server is `closing` (then it
    ends cleanly, and an EventSource reconnects with its Last-Event-ID)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    started = asyncio.Event()

    async def start() -> None:
        if not response.prepared:
            await response.prepare(http_request)
            await response.write(b": stream started\n\n")
            started.set()

    async def write(message: Any) -> None:
        try:
            await start()
            await response.write(render(message))
        except (ConnectionError, RuntimeError) as error:
            # The client went away: the stream ends, like a cancelled gRPC call.
            raise asyncio.CancelledError from error

    context = RestContext(authorization, write, session_principal)
    call = asyncio.create_task(_call(method, request, context), name="sse-stream")
    waiters = [asyncio.create_task(started.wait()), asyncio.create_task(closing.wait())]
    try:
        await asyncio.wait({call, waiters[0]}, timeout=HEADERS_AFTER, return_when="FIRST_COMPLETED")
        error = context.error
        refused_early = call.done() and error is not None and not started.is_set()
        if refused_early and error is not None and error.code is not grpc.StatusCode.OUT_OF_RANGE:
            return error_response(error)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await start()
        await asyncio.wait({call, waiters[1]}, return_when="FIRST_COMPLETED")
        if context.error is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await response.write(f"event: error\ndata: {context.error.json()}\n\n".encode())
    finally:
        for task in (*waiters, call):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
    return response


async def _call(method: StreamMethod, request: Any, context: RestContext) -> None:
    with contextlib.suppress(grpc.aio.AbortError):
        await method(request, context)
