"""A tiny grpc.aio proxy in front of a real server that loses answers on purpose.

Each unary call is forwarded as raw bytes. For the first `lose` calls the proxy forwards the
request (so the server commits it) and then answers UNAVAILABLE, as if the connection dropped
after the commit: the client cannot tell whether its call took effect, which is exactly the case
idempotency keys exist for."""

from __future__ import annotations

from typing import Any

import grpc


class LossyProxy:
    def __init__(self, upstream: str, lose: int = 1) -> None:
        self.upstream = upstream
        self.lose = lose
        self.forwarded: list[str] = []
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._channel: grpc.aio.Channel | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._channel = grpc.aio.insecure_channel(self.upstream)
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((_Forward(self),))
        self.port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)
        if self._channel is not None:
            await self._channel.close()

    async def forward(self, method: str, request: bytes, context: Any) -> bytes:
        assert self._channel is not None
        self.forwarded.append(method)
        metadata = tuple(context.invocation_metadata() or ())
        answer: bytes = await self._channel.unary_unary(method)(request, metadata=metadata)
        if self.lose > 0:
            self.lose -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "proxy: connection lost")
        return answer


class _Forward(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, proxy: LossyProxy) -> None:
        self._proxy = proxy

    def service(self, details: Any) -> Any:
        method = details.method

        async def handle(request: bytes, context: Any) -> bytes:
            return await self._proxy.forward(method, request, context)

        return grpc.unary_unary_rpc_method_handler(handle)
