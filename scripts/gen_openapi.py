"""Write the OpenAPI 3.1 document of the REST routes from the protos' descriptors.

Run by `make generate` after `make proto`: the paths and methods come from each RPC's
`google.api.http` option (the same routes the server builds), the schemas from the messages by
the proto3 JSON mapping. The result is committed (src/webhook_grpc/api/rest/openapi.json) and
served at /api/v1/openapi.json; CI fails when it is stale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from webhook_grpc import __version__
from webhook_grpc.api.rest import openapi
from webhook_grpc.api.rest.routes import Route, routes_of
from webhook_grpc.api.rest.server import CREATED, OPENAPI_PATH
from webhook_grpc.app import PROTO_FILES

OUT = Path(openapi.__file__).with_name(openapi.FILE_NAME)
STATUS = "google.rpc.Status"

# Well-known types by their proto3 JSON form.
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
}
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    # 64-bit integers are strings in proto3 JSON.
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
}


class Schemas:
    """components.schemas: every message reachable from the routes, by full name."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        if descriptor.full_name not in self.components:
            self.components[descriptor.full_name] = {}  # placeholder against recursion
            self.components[descriptor.full_name] = {
                "type": "object",
                "properties": {field.name: self.field(field) for field in descriptor.fields},
                "additionalProperties": False,
            }
        return {"$ref": f"#/components/schemas/{descriptor.full_name}"}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            return {
                "type": "object",
                "additionalProperties": self.field(message.fields_by_name["value"]),
            }
        single = self.single(field)
        return {"type": "array", "items": single} if field.is_repeated else single

    def single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            return _enum(field.enum_type)
        return dict(_SCALARS[field.type])


def _enum(enum: EnumDescriptor) -> dict[str, Any]:
    return {"type": "string", "enum": [value.name for value in enum.values]}


def _query_parameters(route: Route, schemas: Schemas) -> list[dict[str, Any]]:
    if route.body == "*":
        return []
    bound = {variable.field_path for variable in route.variables}
    return [
        {
            "name": field.name,
            "in": "query",
            "required": False,
            "schema": schemas.field(field),
            **({"explode": True} if field.is_repeated else {}),
        }
        for field in route.method.input_type.fields
        if field.name not in bound
        and field.name != route.body
        and (field.message_type is None or field.message_type.full_name in _WELL_KNOWN)
    ]


def _operation(route: Route, schemas: Schemas) -> dict[str, Any]:
    method = route.method
    parameters = [
        {
            "name": variable.placeholder,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
        }
        for variable in route.variables
    ] + _query_parameters(route, schemas)
    operation: dict[str, Any] = {
        "operationId": f"{route.service.name}_{method.name}",
        "tags": [route.service.name],
        "parameters": parameters,
    }
    if route.body:
        body_type = (
            method.input_type
            if route.body == "*"
            else method.input_type.fields_by_name[route.body].message_type
        )
        operation["requestBody"] = {
            "required": route.body != "*",
            "content": {"application/json": {"schema": schemas.ref(body_type)}},
        }
    error = {
        "description": "google.rpc.Status with the HTTP status of its gRPC code",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{STATUS}"}}},
    }
    if route.streaming:
        success = {
            "200": {
                "description": (
                    "Server-Sent Events: one message per event (id: its cursor, event: its "
                    "type, data: the Event JSON); heartbeat comments carry the cursor; an "
                    "`error` event carries a google.rpc.Status. Resume with Last-Event-ID."
                ),
                "content": {
                    "text/event-stream": {
                        "schema": {"type": "string"},
                        "x-event-data": schemas.ref(
                            method.output_type.fields_by_name["events"].message_type
                        ),
                    }
                },
            }
        }
        operation["parameters"].append(
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            }
        )
    elif not method.output_type.fields:
        success = {"204": {"description": "Done"}}
    else:
        success = {
            "201" if method.name in CREATED else "200": {
                "description": method.output_type.name,
                "content": {"application/json": {"schema": schemas.ref(method.output_type)}},
            }
        }
    operation["responses"] = {**success, "default": error}
    return operation


def _service_paths() -> dict[str, Any]:
    """The routes that are not RPCs: this document, liveness and readiness."""

    def get(operation_id: str, description: str, *failures: str) -> dict[str, Any]:
        responses: dict[str, Any] = {
            "200": {"description": description, "content": {"application/json": {"schema": {}}}}
        }
        for status in failures:
            responses[status] = {
                "description": "not ready",
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{STATUS}"}}
                },
            }
        return {"get": {"operationId": operation_id, "security": [], "responses": responses}}

    return {
        OPENAPI_PATH: get("OpenApi", "This document"),
        "/healthz": get("Healthz", "The process is alive"),
        "/readyz": get("Readyz", "The database is reachable", "503"),
    }


def document() -> dict[str, Any]:
    schemas = Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes_of(PROTO_FILES):
        paths.setdefault(route.path, {})[route.http_method.lower()] = _operation(route, schemas)
    paths.update(_service_paths())
    schemas.components[STATUS] = {
        "type": "object",
        "properties": {
            "code": {"type": "integer", "format": "int32"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": _WELL_KNOWN["google.protobuf.Any"]},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "webhook-grpc REST/JSON API",
            "version": __version__,
            "description": (
                "The gRPC API of webhooks.v1 over HTTP/JSON (proto3 JSON mapping), generated "
                "from the google.api.http annotations of the protos."
            ),
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def main() -> int:
    OUT.write_text(json.dumps(document(), indent=2) + "\n")
    print(f"generated {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
