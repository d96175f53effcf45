"""Unary calls with the client's credentials, deadline and retry policy."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from webhook_grpc_client.retry import RetryPolicy, is_retryable

Metadata = tuple[tuple[str, str], ...] | None


class Caller:
    """Runs unary calls with the client's credentials, deadline and retry policy."""

    def __init__(self, metadata: Metadata, timeout: float | None, retry: RetryPolicy) -> None:
        self.metadata = metadata
        self.timeout = timeout
        self.retry = retry

    async def once(self, method: Any, request: Any) -> Any:
        return await method(request, metadata=self.metadata, timeout=self.timeout)

    async def retrying(self, method: Any, request: Any) -> Any:
        """Call until success, a non-transient error, or `retry.max_attempts` attempts.

        Only for calls that are safe to repeat (reads, and publishing with an idempotency key).
        """
        failures = 0
        while True:
            try:
                return await self.once(method, request)
            except grpc.aio.AioRpcError as error:
                failures += 1
                if not is_retryable(error) or failures >= self.retry.max_attempts:
                    raise
            await asyncio.sleep(self.retry.delay(failures))
