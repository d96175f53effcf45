"""OpenTelemetry tracing, configured by the standard OTEL_* variables and off unless they name an
exporter (README "Tracing").

Off, nothing is traced and nothing of OpenTelemetry runs on the hot paths: a publisher's
`traceparent` is still stored with its events and sent on with their deliveries, as the W3C
header it came as, so a receiver's spans join the publisher's trace through this service.
On, the parts are handed the tracer of one `Tracing` (tests hand their own, with an in-memory
exporter); nothing here sets OpenTelemetry's global provider."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from webhook_grpc import __version__
from webhook_grpc.domain.trace_context import TraceContext

SERVICE_NAME = "webhook-grpc"
_W3C = TraceContextTextMapPropagator()
_EXPORTERS_GROUP = "opentelemetry_traces_exporter"
_OTLP_BY_PROTOCOL = {
    "grpc": "otlp_proto_grpc",
    "http/protobuf": "otlp_proto_http",
}


class TracingConfigError(ValueError):
    """The OTEL_* variables name an exporter that cannot be used."""


class Tracing:
    """The tracer every part uses; `enabled` is false for the no-op one."""

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        self.enabled = provider is not None
        self._provider = provider
        self.tracer = (provider or trace.NoOpTracerProvider()).get_tracer(
            "webhook_grpc", __version__
        )

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporters."""
        shutdown = getattr(self._provider, "shutdown", None)
        if shutdown is not None:
            shutdown()


OFF = Tracing()


def from_environment(environ: Mapping[str, str] = os.environ) -> Tracing:
    """Tracing as the OTEL_* variables configure it: on when OTEL_TRACES_EXPORTER names an
    exporter other than `none`, or an OTLP endpoint is set; off when OTEL_SDK_DISABLED is true.
    (OpenTelemetry's own default exporter is `otlp`: a service that must not try to reach a
    collector that is not there is off by default instead.)"""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return OFF
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names and (
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        names = ["otlp"]
    names = [name for name in names if name != "none"]
    if not names:
        return OFF
    # The SDK is imported only when tracing is on.
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporters = [_exporter(name, environ) for name in names]
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by Resource.create; the sampler
    # (OTEL_TRACES_SAMPLER) by the provider, the batching (OTEL_BSP_*) by the processor.
    resource = Resource.create({"service.version": __version__})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider)


def _exporter(name: str, environ: Mapping[str, str]) -> Any:
    if name == "otlp":
        protocol = (
            environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "grpc"
        ).strip()
        if protocol not in _OTLP_BY_PROTOCOL:
            raise TracingConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; use grpc or "
                "http/protobuf"
            )
        name = _OTLP_BY_PROTOCOL[protocol]
    found = entry_points(group=_EXPORTERS_GROUP, name=name)
    if not found:
        extra = " (install webhook-grpc[otlp])" if name.startswith("otlp") else ""
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER names the trace exporter {name!r}, which is not installed{extra}"
        )
    return next(iter(found)).load()()


def parent(context: TraceContext | None) -> Context:
    """The OpenTelemetry context whose span is the stored one: a new root without it."""
    if context is None:
        return Context()
    return _W3C.extract(context.headers(), context=Context())


def current() -> TraceContext | None:
    """The current span's context, as W3C text (None when there is no valid span)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return TraceContext.parse(carrier.get("traceparent"), carrier.get("tracestate"))


def inject(headers: dict[str, str]) -> None:
    """Set `traceparent` (and `tracestate`) in `headers` from the current span."""
    _W3C.inject(headers)
