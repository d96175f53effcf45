"""An async iterator over a tenant's feed that survives disconnects without gaps or duplicates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from types import TracebackType
from typing import Any

import grpc

from webhook_grpc_client._calls import Metadata
from webhook_grpc_client._gen.webhooks.v1 import events_pb2, feed_pb2, feed_pb2_grpc
from webhook_grpc_client.retry import RetryPolicy, is_retryable

__all__ = ["FEED_RETRY", "Feed"]

# Consecutive failed (re)connections before the feed gives up: about 15 s of outage on average
# (up to about 30 s), enough for a server restart. Any message received resets the count.
FEED_RETRY = RetryPolicy(max_attempts=10, initial_delay=0.1, max_delay=5.0)


class Feed:
    """Events of one tenant in cursor order: the backlog after a start, then live events.

    Iterate with ``async for event in feed``. The feed remembers the cursor of the last event it
    yielded, and of every heartbeat the server sends while idle, in `cursor`. When the stream
    breaks (``UNAVAILABLE``, a server restart, a dropped connection) it reconnects after that
    cursor with exponential backoff, so every later event is yielded exactly once. It gives up,
    raising the last ``grpc.aio.AioRpcError``, after `retry.max_attempts` consecutive failed
    connections; other errors (``INVALID_ARGUMENT``, ``OUT_OF_RANGE`` for a purged cursor,
    ``PERMISSION_DENIED``…) are raised at once.

    Store `cursor` durably after handling each event to resume a later process where this one
    stopped (pass it as ``after_cursor``). Close the feed with `aclose` or ``async with``.

    With ``from_latest`` the start position is only known once the first event or heartbeat
    arrives; a disconnect before that resumes from the head again.
    """

    def __init__(
        self,
        stub: feed_pb2_grpc.FeedServiceAsyncStub,
        request: feed_pb2.StreamEventsRequest,
        *,
        metadata: Metadata = None,
        retry: RetryPolicy = FEED_RETRY,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._stub = stub
        self._request = request
        self._metadata = metadata
        self._retry = retry
        self._sleep = sleep
        self._call: Any = None
        self._closed = False
        self._waiting = False
        self._events = self._run()
        #: Position after the last event yielded (or the last heartbeat); resume from here.
        self.cursor: str = request.after_cursor
        #: How many times the feed has reconnected (for monitoring).
        self.reconnects: int = 0

    def __aiter__(self) -> Feed:
        return self

    async def __anext__(self) -> events_pb2.Event:
        self._waiting = True
        try:
            return await self._events.__anext__()
        finally:
            self._waiting = False

    async def __aenter__(self) -> Feed:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel the underlying stream and stop iterating."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()
        # Another task may be waiting for the next event: the cancelled call ends its iteration.
        if not self._waiting:
            await self._events.aclose()

    def _next_request(self) -> feed_pb2.StreamEventsRequest:
        request = feed_pb2.StreamEventsRequest()
        request.CopyFrom(self._request)
        if self.cursor:
            # Once a position is known, resume after it, never from the head again.
            request.after_cursor = self.cursor
            request.from_latest = False
        return request

    async def _run(self) -> AsyncGenerator[events_pb2.Event, None]:
        failures = 0
        while not self._closed:
            call = self._stub.StreamEvents(self._next_request(), metadata=self._metadata)
            self._call = call
            error: grpc.aio.AioRpcError | None = None
            try:
                async for response in call:
                    failures = 0
                    for event in response.events:
                        self.cursor = event.cursor
                        yield event
                    if response.cursor:
                        self.cursor = response.cursor
            except (grpc.aio.AioRpcError, asyncio.CancelledError) as caught:
                if self._closed:
                    return
                if isinstance(caught, asyncio.CancelledError) or not is_retryable(caught):
                    raise
                error = caught
            finally:
                call.cancel()
                self._call = None
            # The stream ended (with an error, or a server that closed it): reconnect.
            failures += 1
            if failures >= self._retry.max_attempts:
                if error is not None:
                    raise error
                return
            await self._sleep(self._retry.delay(failures))
            self.reconnects += 1
