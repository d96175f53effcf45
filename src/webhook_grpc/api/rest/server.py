"""The HTTP listener: aiohttp routes built from the annotations, calling the gRPC servicers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.descriptor import FileDescriptor
from opentelemetry.trace import Status, StatusCode, Tracer

from webhook_grpc.domain.access import Principal
from webhook_grpc.domain.trace_context import TRACEPARENT, TRACESTATE, TraceContext

from ..tracing import server_span
from . import sse
from .browser_guard import browser_guard
from .context import RestContext
from .cookie_auth import CookieAuth
from .routes import Route, routes_of
from .status import INTERNAL, RestError, rest_error
from .transcode import request_message, response_json

log = logging.getLogger(__name__)

# RPCs that create something answer 201 (SPEC §9); a response without fields answers 204.
CREATED = frozenset({"CreateSubscription", "PublishEvent", "PublishEvents"})
JSON = "application/json"
OPENAPI_PATH = "/api/v1/openapi.json"

Readiness = Callable[[], Awaitable[bool]]


def error_response(error: RestError) -> web.Response:
    return web.Response(status=error.http, text=error.json(), content_type=JSON)


class RestServer:
    """Serves every annotated RPC of `files` with the servicer registered for its service."""

    def __init__(
        self,
        files: Iterable[FileDescriptor],
        servicers: Mapping[str, Any],
        *,
        max_body_bytes: int,
        ready: Readiness,
        openapi: bytes,
        shutdown_grace: float = 1.0,
        cookie_auth: CookieAuth | None = None,
        open_server: bool = False,
        tracer: Tracer | None = None,
    ) -> None:
        self.routes = routes_of(files)
        self._servicers = servicers
        self._ready = ready
        self._openapi = openapi
        self._shutdown_grace = shutdown_grace
        self._cookie_auth = cookie_auth
        self._max_body_bytes = max_body_bytes
        self._tracer = tracer
        self._closing = asyncio.Event()
        self.app = web.Application(
            client_max_size=max_body_bytes,
            middlewares=[_as_status, browser_guard(open_server=open_server)],
        )
        resources: dict[str, web.Resource] = {}
        for route in self.routes:
            resource = resources.get(route.path)
            if resource is None:
                resource = resources[route.path] = self.app.router.add_resource(route.path)
            resource.add_route(route.http_method, self._handler(route))
        self.app.router.add_get(OPENAPI_PATH, self._openapi_document)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, listen: str, reuse_port: bool = False) -> int:
        host, _, port = listen.rpartition(":")
        # Feed streams are ended by stop(); calls in flight get the grace to finish, as over gRPC.
        # A call whose client disconnects is cancelled, as grpc cancels it: a stream frees its
        # slot at once, not at its next heartbeat.
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=self._shutdown_grace,
            handler_cancellation=True,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]"), int(port), reuse_port=reuse_port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        # Feed streams never end on their own: end them, then the listener.
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _handler(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        servicer = self._servicers[route.service.full_name]
        method = getattr(servicer, route.method.name)
        success = 201 if route.method.name in CREATED else 200

        async def call(request: web.Request, caller: TraceContext | None) -> web.Response:
            declared = request.content_length
            if declared is not None and declared > self._max_body_bytes:
                # At once: waiting for a body that will be refused would hold the connection
                # for as long as the client likes.
                raise web.HTTPRequestEntityTooLarge(
                    max_size=self._max_body_bytes, actual_size=declared
                )
            message = request_message(
                route, request.match_info, request.query.items(), await request.read()
            )
            context = RestContext(
                request.headers.get("Authorization"),
                session_principal=await self._session_principal(request),
                trace_context=caller,
            )
            try:
                response = await method(message, context)
            except grpc.aio.AbortError:
                return error_response(context.error or INTERNAL)
            if not response.DESCRIPTOR.fields:
                return web.Response(status=204)
            return web.Response(status=success, text=response_json(response), content_type=JSON)

        attributes = {
            "http.request.method": route.http_method,
            "http.route": route.path,
            "rpc.service": route.service.full_name,
            "rpc.method": route.method.name,
        }
        name = f"{route.http_method} {route.path}"

        async def unary(request: web.Request) -> web.StreamResponse:
            caller = TraceContext.parse(
                request.headers.get(TRACEPARENT), request.headers.get(TRACESTATE)
            )
            if self._tracer is None:
                return await call(request, caller)
            with server_span(self._tracer, name, caller, attributes) as span:
                response = await call(request, caller)
                span.set_attribute("http.response.status_code", response.status)
                if response.status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                return response

        async def stream(request: web.Request) -> web.StreamResponse:
            message = request_message(route, request.match_info, request.query.items(), b"")
            sse.resume(message, request.headers, request.query)
            return await sse.serve(
                request,
                message,
                method,
                request.headers.get("Authorization"),
                await self._session_principal(request),
                error_response,
                self._closing,
            )

        return stream if route.streaming else unary

    async def _session_principal(self, request: web.Request) -> Principal | None:
        if self._cookie_auth is None:
            return None
        return await self._cookie_auth.principal(request)

    async def _openapi_document(self, _: web.Request) -> web.Response:
        return web.Response(body=self._openapi, content_type=JSON)

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text='{"status": "SERVING"}', content_type=JSON)

    async def _readyz(self, _: web.Request) -> web.Response:
        if await self._ready():
            return web.Response(text='{"status": "SERVING"}', content_type=JSON)
        return error_response(
            rest_error(grpc.StatusCode.UNAVAILABLE, "the database is unavailable")
        )


@web.middleware
async def _as_status(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every failure answers google.rpc.Status JSON: never aiohttp's text or HTML pages."""
    try:
        return await handler(request)
    except RestError as error:
        return error_response(error)
    except web.HTTPRequestEntityTooLarge as error:
        return error_response(
            rest_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request body is too large: {error.text}",
                http_status=413,
            )
        )
    except web.HTTPNotFound:
        return error_response(rest_error(grpc.StatusCode.NOT_FOUND, f"no route for {request.path}"))
    except web.HTTPMethodNotAllowed as error:
        return error_response(
            rest_error(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{request.method} is not allowed on {request.path}; "
                f"allowed: {', '.join(sorted(error.allowed_methods))}",
                http_status=405,
            )
        )
    except web.HTTPException as error:
        return error_response(
            rest_error(grpc.StatusCode.INVALID_ARGUMENT, error.reason, http_status=error.status)
        )
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return error_response(INTERNAL)
