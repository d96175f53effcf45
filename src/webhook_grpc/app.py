"""Wires storage, services, the dispatcher, retention and the gRPC server; starts and stops them.

Each part can be switched off: `serve` runs everything, `dispatcher` only the dispatcher, and
tests start an App on port 0 with a short backoff schedule and, where needed, their own clock."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from webhook_grpc import logs, tracing
from webhook_grpc._gen.webhooks.v1 import (
    deliveries_pb2,
    deliveries_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    feed_pb2,
    feed_pb2_grpc,
    portal_pb2,
    portal_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)
from webhook_grpc.api import reflection
from webhook_grpc.api.auth import Authenticator
from webhook_grpc.api.decoding import RequestDecodingGuard
from webhook_grpc.api.deliveries import DeliveryServicer
from webhook_grpc.api.events import EventServicer
from webhook_grpc.api.feed import FeedServicer
from webhook_grpc.api.listen_address import check_bindable
from webhook_grpc.api.portal import web as portal_web
from webhook_grpc.api.portal.servicer import PortalServicer
from webhook_grpc.api.rest import openapi
from webhook_grpc.api.rest.cookie_auth import CookieAuth
from webhook_grpc.api.rest.server import OPENAPI_PATH, RestServer
from webhook_grpc.api.subscriptions import SubscriptionServicer
from webhook_grpc.api.tracing import TracingInterceptor
from webhook_grpc.config import ServerSettings, Settings
from webhook_grpc.dispatch.dispatcher import Dispatcher
from webhook_grpc.dispatch.recorder import AttemptRecorder
from webhook_grpc.dispatch.transport import HttpTransport
from webhook_grpc.domain.clock import Clock, system_clock
from webhook_grpc.domain.cursors import CursorCodec
from webhook_grpc.domain.errors import StorageUnavailable
from webhook_grpc.encryption import SecretBox, SecretKeyError, resolve_box
from webhook_grpc.encryption.startup import check_keys_open_secrets
from webhook_grpc.metrics import Metrics, MetricsServer
from webhook_grpc.services.auto_disable import AutoDisabler
from webhook_grpc.services.deliveries import DeliveryService
from webhook_grpc.services.feed import FeedService
from webhook_grpc.services.portal_sessions import PortalSessionService
from webhook_grpc.services.probe import ProbeService
from webhook_grpc.services.publishing import Publisher
from webhook_grpc.services.registry import RegistryService
from webhook_grpc.services.replay import EventReplay
from webhook_grpc.services.retention import RetentionService
from webhook_grpc.services.subscription_health import SubscriptionHealthService
from webhook_grpc.services.subscriptions import SubscriptionService
from webhook_grpc.services.target_guard import TargetGuard
from webhook_grpc.storage import migrate, process_lock
from webhook_grpc.storage.factory import open_storage
from webhook_grpc.storage.ports import Storage, Wakeups
from webhook_grpc.tracing import Tracing

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
    subscriptions_pb2.DESCRIPTOR.services_by_name["SubscriptionService"].full_name,
    feed_pb2.DESCRIPTOR.services_by_name["FeedService"].full_name,
    deliveries_pb2.DESCRIPTOR.services_by_name["DeliveryService"].full_name,
    portal_pb2.DESCRIPTOR.services_by_name["PortalService"].full_name,
)
PROTO_FILES = (
    events_pb2.DESCRIPTOR,
    subscriptions_pb2.DESCRIPTOR,
    feed_pb2.DESCRIPTOR,
    deliveries_pb2.DESCRIPTOR,
    portal_pb2.DESCRIPTOR,
)
# /readyz answers 503 when the database does not answer within this long.
READINESS_TIMEOUT = 2.0
# The gRPC server's default receive limit; REST takes the same, or more when max_payload_bytes
# needs it (an event's data and previous, each up to max_payload_bytes, plus its envelope).
GRPC_RECEIVE_LIMIT = 4 * 1024 * 1024


def rest_body_limit(max_payload_bytes: int) -> int:
    return max(GRPC_RECEIVE_LIMIT, 2 * max_payload_bytes + 64 * 1024)


class StartupError(Exception):
    """The service refuses to start with this configuration."""


@dataclass
class Roles:
    """Which parts of the service this process runs."""

    api: bool = True
    dispatcher: bool = True
    retention: bool = True
    migrate: bool = True
    queue_metrics: bool = True
    """Refresh the queue gauges (pending deliveries, oldest age): one process of `serve
    --workers N` does, so that summing the workers' metrics counts the queue once."""
    worker: int | None = None
    """The index of this process under `serve --workers N` (cli/workers.py): it then shares
    its listening ports with the other workers (SO_REUSEPORT), which checked them already."""


@dataclass
class App:
    settings: Settings
    roles: Roles = field(default_factory=Roles)
    clock: Clock = system_clock
    port: int = 0
    tracing: Tracing | None = None
    """None: from the OTEL_* variables when it starts (and shut down when it stops)."""
    metrics: Metrics = field(init=False, default_factory=Metrics)
    """This App's own: what its parts record and its /metrics serves."""
    storage: Storage = field(init=False)
    box: SecretBox = field(init=False)
    notifier: Wakeups = field(init=False)
    publisher: Publisher = field(init=False)
    retention: RetentionService = field(init=False)
    # The dispatcher's parts exist only in a process that runs it; the metrics server only
    # when metrics_listen is set.
    dispatcher: Dispatcher | None = field(init=False, default=None)
    transport: HttpTransport | None = field(init=False, default=None)
    recorder: AttemptRecorder | None = field(init=False, default=None)
    metrics_server: MetricsServer | None = field(init=False, default=None)
    http_port: int = 0
    _server: grpc.aio.Server | None = field(init=False, default=None)
    rest: RestServer | None = field(init=False, default=None)
    _lock: process_lock.ProcessLock | None = field(init=False, default=None)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _own_tracing: bool = field(init=False, default=False)

    async def start(self) -> None:
        settings = self.settings
        logs.guard_secrets()
        if self.tracing is None:
            try:
                self.tracing = tracing.from_environment()
            except tracing.TracingConfigError as error:
                raise StartupError(str(error)) from None
            self._own_tracing = True
        if self.roles.api and self.roles.worker is None:
            check_api_listen(settings.server)
        if settings.server.metrics_listen:
            _check_listen(settings.server.metrics_listen, " (metrics_listen)")
        try:
            self._lock = process_lock.acquire(
                settings.database.database_url, "serve" if self.roles.api else "dispatcher"
            )
        except (process_lock.DatabaseInUse, OSError) as error:
            raise StartupError(str(error)) from None
        try:
            await self._start()
        except BaseException:
            # Close what did start (an open HTTP client session would be reported at exit).
            await self.stop(grace=0)
            raise

    async def _start(self) -> None:
        settings = self.settings
        database_url = settings.database.database_url
        try:
            self.box = resolve_box(settings.secrets.secret_key, database_url)
        except SecretKeyError as error:
            raise StartupError(str(error)) from None
        if self.roles.migrate:
            await asyncio.to_thread(migrate.upgrade, database_url, "head", self.box)
        self.storage = open_storage(database_url)
        try:
            await check_keys_open_secrets(self.storage, self.box)
        except SecretKeyError as error:
            await self.storage.dispose()
            raise StartupError(str(error)) from None
        self.notifier = self.storage.wakeups
        registry = RegistryService(self.storage, self.clock)
        await registry.ensure_builtins()
        async with self.storage.transaction() as unit:
            key = await unit.state.get_or_create("cursor_key", lambda: secrets.token_hex(32))
        cursors = CursorCodec(bytes.fromhex(key))
        self.publisher = Publisher(
            self.storage,
            settings.publishing,
            cursors,
            self.notifier,
            self.metrics,
            self.clock,
            self._tracing,
        )
        await self.notifier.start()

        if self.roles.dispatcher and (settings.server.serve_dispatcher or not self.roles.api):
            delivery = settings.delivery
            self.transport = HttpTransport(
                delivery.delivery_timeout,
                settings.targets.allow_private_targets,
                max_connections=delivery.dispatcher_concurrency,
                tracing=self._tracing,
            )
            await self.transport.start()
            self.recorder = AttemptRecorder(
                self.storage,
                AutoDisabler(settings.auto_disable, self.publisher, self.metrics),
                self.clock,
                self.metrics,
            )
            self.recorder.start()
            self.dispatcher = Dispatcher(
                self.storage,
                delivery,
                self.notifier,
                self.transport,
                self.recorder,
                self.box,
                self.metrics,
                self.clock,
                self._tracing,
            )
            self._tasks.append(asyncio.create_task(self.dispatcher.run(), name="dispatcher"))
        if settings.server.metrics_listen:
            self.metrics_server = MetricsServer(
                settings.server.metrics_listen, self.metrics, self.storage, self.clock
            )
            try:
                self.metrics_server.start()
            except OSError as error:
                self.metrics_server = None
                raise StartupError(
                    f"cannot listen on {settings.server.metrics_listen} (metrics_listen): "
                    f"{error.strerror or error}"
                ) from None
            if self.roles.queue_metrics:
                self._tasks.append(asyncio.create_task(self.metrics_server.run(), name="metrics"))
        self.retention = RetentionService(self.storage, settings.retention, self.clock)
        if self.roles.retention:
            self._tasks.append(asyncio.create_task(self.retention.run(), name="retention"))
        if self.roles.api:
            await self._start_server(registry, cursors)

    async def _start_server(self, registry: RegistryService, cursors: CursorCodec) -> None:
        settings = self.settings
        listen = settings.server.listen
        auth = Authenticator(settings.server.tokens)
        guard = TargetGuard(
            settings.targets.allow_http_targets, settings.targets.allow_private_targets
        )
        traced = self._tracing.enabled
        interceptors: list[grpc.aio.ServerInterceptor] = [RequestDecodingGuard()]
        if traced:
            # Outermost: the span covers the decoding guard's refusals too.
            interceptors.insert(0, TracingInterceptor(self._tracing.tracer))
        # Port sharing only among the workers of one `serve --workers N`: otherwise a second
        # server on the same port would silently take half of the calls.
        reuse_port = self.roles.worker is not None
        server = grpc.aio.server(
            interceptors=interceptors, options=[("grpc.so_reuseport", int(reuse_port))]
        )
        probe = ProbeService(self.storage, self.publisher)
        # One servicer per service, shared by the gRPC server and the REST listener.
        events = EventServicer(auth, self.publisher, registry)
        subscriptions = SubscriptionServicer(
            auth,
            SubscriptionService(self.storage, settings.subscriptions, guard, self.box, self.clock),
            probe,
            SubscriptionHealthService(self.storage, settings.auto_disable, self.clock),
        )
        feed = FeedServicer(
            auth, FeedService(self.storage, settings.feed, cursors, self.notifier, self.metrics)
        )
        deliveries = DeliveryServicer(
            auth,
            DeliveryService(self.storage, self.notifier, self.clock),
            EventReplay(
                self.storage,
                self.notifier,
                timedelta(days=settings.retention.retention_days),
                self.clock,
            ),
        )
        portal_sessions = PortalSessionService(self.storage, self.clock)
        portal = PortalServicer(auth, portal_sessions, self._portal_base_url)
        events_pb2_grpc.add_EventServiceServicer_to_server(events, server)
        subscriptions_pb2_grpc.add_SubscriptionServiceServicer_to_server(subscriptions, server)
        feed_pb2_grpc.add_FeedServiceServicer_to_server(feed, server)
        deliveries_pb2_grpc.add_DeliveryServiceServicer_to_server(deliveries, server)
        portal_pb2_grpc.add_PortalServiceServicer_to_server(portal, server)
        health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        for name in (*SERVICE_NAMES, ""):
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        reflection.enable(
            (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name), server
        )
        try:
            self.port = server.add_insecure_port(listen)
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise StartupError(f"cannot listen on {listen}")
        await server.start()
        self._server = server
        host = listen.rpartition(":")[0]
        if self.roles.worker is None:
            log.info("webhook-grpc listening on %s:%d", host, self.port)
        else:
            log.info(
                "webhook-grpc listening on %s:%d (worker %d)", host, self.port, self.roles.worker
            )
        if auth.is_open:
            log.warning(
                "NO TOKENS CONFIGURED: the API is open to every caller on %s:%d "
                "(allowed on loopback only); configure [[tokens]] for anything else",
                host,
                self.port,
            )
        if settings.server.http_listen:
            cookie_auth = CookieAuth(portal_sessions)
            self.rest = RestServer(
                PROTO_FILES,
                dict(
                    zip(
                        SERVICE_NAMES,
                        (events, subscriptions, feed, deliveries, portal),
                        strict=True,
                    )
                ),
                max_body_bytes=rest_body_limit(settings.publishing.max_payload_bytes),
                ready=self._database_ready,
                openapi=openapi.document(),
                # What `serve` gives in-flight work on SIGTERM (cli/server.py).
                shutdown_grace=settings.delivery.delivery_timeout.total_seconds(),
                cookie_auth=cookie_auth,
                open_server=auth.is_open,
                tracer=self._tracing.tracer if traced else None,
            )
            portal_web.install(self.rest.app, portal_sessions, cookie_auth, self.clock)
            try:
                self.http_port = await self.rest.start(
                    settings.server.http_listen, reuse_port=reuse_port
                )
            except OSError as error:
                await server.stop(None)
                self._server = None
                raise StartupError(
                    f"cannot listen on {settings.server.http_listen} (http_listen): {error}"
                ) from None
            log.info(
                "REST/JSON API on http://%s:%d/api/v1 (OpenAPI at %s); consumer portal at "
                "/portal/ (a link: webhook-grpc portal-link --tenant <id>)",
                settings.server.http_listen.rpartition(":")[0],
                self.http_port,
                OPENAPI_PATH,
            )

    @property
    def _tracing(self) -> Tracing:
        return self.tracing or tracing.OFF

    def _portal_base_url(self) -> str | None:
        """Where portal links point: the HTTP listener (a wildcard host as localhost)."""
        if self.rest is None or not self.http_port:
            return None
        host = self.settings.server.http_listen.rpartition(":")[0]
        if host in ("", "0.0.0.0", "[::]", "::"):
            host = "localhost"
        return f"http://{host}:{self.http_port}"

    async def _database_ready(self) -> bool:
        try:
            async with asyncio.timeout(READINESS_TIMEOUT):
                await self.storage.ping()
        except (StorageUnavailable, TimeoutError):
            return False
        return True

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting calls, finish in-flight work (bounded by `grace`), release the rest."""
        if self.rest is not None:
            await self.rest.stop()
        if self._server is not None:
            await self._server.stop(grace)
        if self.dispatcher is not None:
            await self.dispatcher.stop(grace)
        if self.recorder is not None:
            # After the dispatcher: its attempts that finish in the grace are handed over.
            await self.recorder.stop(grace)
        if self.transport is not None:
            await self.transport.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.metrics_server is not None:
            self.metrics_server.stop()
        # Absent only when start failed before creating them.
        if hasattr(self, "notifier"):
            await self.notifier.stop()
        if hasattr(self, "storage"):
            await self.storage.dispose()
        if self._own_tracing and self.tracing is not None:
            # Exports what is buffered; the exporter's timeouts bound it.
            await asyncio.to_thread(self.tracing.shutdown)
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def check_api_listen(settings: ServerSettings) -> None:
    """The API's addresses: refused when open to the network without tokens, or taken."""
    _check_open_mode(settings)
    _check_listen(settings.listen, "")
    if settings.http_listen:
        _check_listen(settings.http_listen, " (http_listen)")


def _check_listen(address: str, setting: str) -> None:
    """Before anything starts: an address in use is one line, not a traceback after migrating."""
    try:
        check_bindable(address)
    except OSError as error:
        raise StartupError(
            f"cannot listen on {address}{setting}: {error.strerror or error}"
        ) from None


def _check_open_mode(settings: ServerSettings) -> None:
    if settings.tokens:
        return
    for name, listen in (("listen", settings.listen), ("http_listen", settings.http_listen)):
        if listen and not _is_loopback(listen):
            raise StartupError(
                f"no tokens are configured, so the API would be open to anyone: refusing to "
                f"listen on {listen} ({name}). Listen on 127.0.0.1 or configure [[tokens]] "
                "(see README)."
            )


def _is_loopback(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
