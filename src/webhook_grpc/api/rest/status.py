"""Errors over HTTP: the gRPC status as google.rpc.Status JSON, with the HTTP status of SPEC §9."""

from __future__ import annotations

import grpc
from google.protobuf import json_format
from google.rpc import status_pb2

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
DETAILS_KEY = "grpc-status-details-bin"


class RestError(Exception):
    """A call's failure: its google.rpc.Status and, where it is not the code's own, the HTTP
    status (413 for an oversized body, 404/405 for a path or method without a route)."""

    def __init__(self, status: status_pb2.Status, http_status: int | None = None) -> None:
        super().__init__(status.message)
        self.status = status
        self.http_status = http_status

    @property
    def code(self) -> grpc.StatusCode:
        return _BY_NUMBER.get(self.status.code, grpc.StatusCode.UNKNOWN)

    @property
    def http(self) -> int:
        return self.http_status or _HTTP_STATUS.get(self.code, 500)

    def json(self) -> str:
        return json_format.MessageToJson(self.status, preserving_proto_field_name=True, indent=None)


def rest_error(code: grpc.StatusCode, message: str, http_status: int | None = None) -> RestError:
    return RestError(status_pb2.Status(code=code.value[0], message=message), http_status)


def from_grpc_status(status: grpc.Status) -> RestError:
    """The RestError of a status a servicer aborted with (its details, if any, included)."""
    for key, value in status.trailing_metadata or ():
        if key == DETAILS_KEY and isinstance(value, bytes):
            return RestError(status_pb2.Status.FromString(value))
    return rest_error(status.code, status.details or "")


INTERNAL = rest_error(grpc.StatusCode.INTERNAL, "internal error; it has been logged")
