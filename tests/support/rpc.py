"""Helpers for asserting on gRPC errors and their google.rpc details."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


async def rpc_error(call: Awaitable[Any], code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """Await `call`, which must fail with `code`; returns the error."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        assert error.code() == code, f"expected {code}, got {error.code()}: {error.details()}"
        return error
    raise AssertionError(f"expected {code}, the call succeeded")


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    """The field names of a google.rpc.BadRequest detail."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "INVALID_ARGUMENT without a google.rpc.Status detail"
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(v.field for v in bad.field_violations)
    return fields


async def invalid_field(call: Awaitable[Any]) -> str:
    """Await `call`, which must fail INVALID_ARGUMENT naming exactly one field; returns it."""
    error = await rpc_error(call, grpc.StatusCode.INVALID_ARGUMENT)
    fields = violated_fields(error)
    assert len(fields) == 1, fields
    return fields[0]


def metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
