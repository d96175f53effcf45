"""The publisher's W3C trace context: what is kept, what is dropped, and the stored form; and
tracing's configuration from the OTEL_* variables."""

from __future__ import annotations

import pytest

from webhook_grpc import tracing
from webhook_grpc.domain.trace_context import TraceContext

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_context_is_kept_and_survives_its_stored_form() -> None:
    context = TraceContext.parse(VALID, "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE")
    assert context is not None
    assert context.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert context.span_id == "00f067aa0ba902b7"
    assert context.tracestate == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    assert TraceContext.from_text(context.text()) == context
    assert context.headers() == {"traceparent": VALID, "tracestate": context.tracestate}
    bare = TraceContext.parse(VALID)
    assert bare is not None and bare.text() == VALID and bare.headers() == {"traceparent": VALID}


@pytest.mark.parametrize(
    "traceparent",
    [
        "",
        "garbage",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # unknown version
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        VALID + "\nx",
        VALID + "-extra",
    ],
)
def test_an_invalid_traceparent_is_dropped(traceparent: str) -> None:
    assert TraceContext.parse(traceparent, "vendor=a") is None


@pytest.mark.parametrize(
    "tracestate",
    ["bad key=1", "a=1\nb=2", "a=" + "x" * 600, ",".join(f"k{i}=v" for i in range(33)), "a=b=c"],
)
def test_an_invalid_tracestate_is_dropped_alone(tracestate: str) -> None:
    context = TraceContext.parse(VALID, tracestate)
    assert context == TraceContext(VALID, "")


def test_metadata_gives_the_context() -> None:
    metadata = (("authorization", "Bearer x"), ("traceparent", VALID), ("tracestate", "a=b"))
    assert TraceContext.from_metadata(metadata) == TraceContext(VALID, "a=b")
    assert TraceContext.from_metadata((("authorization", "Bearer x"),)) is None


def test_tracing_is_off_unless_an_exporter_is_configured() -> None:
    assert not tracing.from_environment({}).enabled
    assert not tracing.from_environment({"OTEL_TRACES_EXPORTER": "none"}).enabled
    assert not tracing.from_environment(
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}
    ).enabled
    console = tracing.from_environment({"OTEL_TRACES_EXPORTER": "console"})
    otlp = tracing.from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
    try:
        assert console.enabled and otlp.enabled
    finally:
        console.shutdown()
        otlp.shutdown()


def test_an_unknown_exporter_is_a_configuration_error() -> None:
    with pytest.raises(tracing.TracingConfigError, match="'zipkin'"):
        tracing.from_environment({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(tracing.TracingConfigError, match="http/json"):
        tracing.from_environment(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
        )
