from __future__ import annotations

import pytest

from webhook_grpc.domain.custom_headers import (
    MAX_HEADERS,
    MAX_VALUE_CHARS,
    is_reserved_header,
    validate_custom_headers,
)
from webhook_grpc.domain.errors import InvalidArgument


def test_ordinary_headers_pass_unchanged() -> None:
    headers = {"X-Tenant": "a", "Authorization": "Bearer abc.def", "X-Empty": "", "X-T": "a\tb c"}
    assert validate_custom_headers(headers) == headers


@pytest.mark.parametrize(
    "name",
    [
        "X-Webhook-Signature",
        "x-webhook-event",
        "webhook-id",
        "Webhook-Signature",
        "WEBHOOK-TIMESTAMP",
        "Content-Type",
        "content-length",
        "Host",
        "User-Agent",
        "Connection",
        "Keep-Alive",
        "Proxy-Authorization",
        "proxy-connection",
        "TE",
        "Trailer",
        "Trailers",
        "Transfer-Encoding",
        "Upgrade",
        "traceparent",
        "TraceState",
    ],
)
def test_reserved_headers_are_refused_whatever_their_case(name: str) -> None:
    assert is_reserved_header(name)
    with pytest.raises(InvalidArgument, match="reserved") as error:
        validate_custom_headers({"X-Tenant": "a", name: "v"})
    assert error.value.field == f'headers["{name}"]'


@pytest.mark.parametrize("name", ["", "X Tenant", "X-Ten:ant", "X-Tenant\r\n", 'X"', "Ünïcode"])
def test_names_must_be_tokens(name: str) -> None:
    with pytest.raises(InvalidArgument, match="not a valid header name"):
        validate_custom_headers({name: "v"})


@pytest.mark.parametrize(
    "value",
    ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b", "a\x7fb", "é", " padded", "padded\t"],
)
def test_values_hold_no_control_characters(value: str) -> None:
    with pytest.raises(InvalidArgument, match="printable ASCII") as error:
        validate_custom_headers({"X-Tenant": value})
    assert error.value.field == 'headers["X-Tenant"]'


def test_values_and_names_are_bounded() -> None:
    assert validate_custom_headers({"X-Big": "v" * MAX_VALUE_CHARS})
    with pytest.raises(InvalidArgument, match="at most"):
        validate_custom_headers({"X-Big": "v" * (MAX_VALUE_CHARS + 1)})
    with pytest.raises(InvalidArgument, match="at most 128") as error:
        validate_custom_headers({"X" * 1000: "v"})
    assert len(error.value.field) < 150


def test_at_most_ten_headers() -> None:
    ten = {f"X-H{i}": "v" for i in range(MAX_HEADERS)}
    assert validate_custom_headers(ten) == ten
    with pytest.raises(InvalidArgument, match="at most 10") as error:
        validate_custom_headers({**ten, "X-One-More": "v"})
    assert error.value.field == "headers"


def test_names_differing_only_in_case_are_one_header() -> None:
    with pytest.raises(InvalidArgument, match="repeats 'X-Tenant'") as error:
        validate_custom_headers({"X-Tenant": "a", "x-tenant": "b"})
    assert error.value.field == 'headers["x-tenant"]'


def test_field_prefix_for_updates() -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_custom_headers({"Host": "x"}, field="subscription.headers")
    assert error.value.field == 'subscription.headers["Host"]'
