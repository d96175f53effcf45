"""HTTP request → request message, response message → JSON, by the proto3 JSON mapping.

Path variables, the query string and the JSON body each fill the fields the route binds them
to; unknown fields are INVALID_ARGUMENT, never ignored. Requests accept both the proto field
names and their lowerCamelCase JSON names; responses use the proto field names."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from google.protobuf import field_mask_pb2, json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from webhook_grpc.api.errors import MAX_MESSAGE_BYTES, clip

from .routes import Route
from .status import RestError, rest_error

# Fields a derived update mask leaves out: they name the resource, they are not changes to it.
_IDENTITY_FIELDS = frozenset({"id", "tenant_id"})
_FIELD_MASK = field_mask_pb2.FieldMask.DESCRIPTOR.full_name


def bad_request(message: str) -> RestError:
    return rest_error(grpc.StatusCode.INVALID_ARGUMENT, clip(message, MAX_MESSAGE_BYTES))


def request_message(
    route: Route,
    path_values: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes,
) -> Message:
    """The route's request message, or RestError (INVALID_ARGUMENT) naming what is wrong."""
    request_type = route.method.input_type
    request = message_factory.GetMessageClass(request_type)()
    bound = {variable.field_path for variable in route.variables}
    _parse(_query_dict(request_type, query, route.body, bound), request)
    body_object = _body_object(body) if route.body else None
    if body_object is not None and route.body == "*":
        _parse(body_object, request)
    elif body_object is not None:
        _parse(body_object, getattr(request, route.body))
        body_type = request_type.fields_by_name[route.body].message_type
        if body_type is not None:
            _derive_update_mask(request, body_type, body_object, bound)
    for variable in route.variables:
        _set_path(request, variable.field_path, path_values[variable.placeholder])
    return request


def response_json(response: Message) -> str:
    return json_format.MessageToJson(
        response,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        indent=None,
    )


def _parse(document: dict[str, Any], message: Message) -> None:
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        raise bad_request(str(error).split("\n", 1)[0]) from None


def _body_object(body: bytes) -> dict[str, Any] | None:
    if not body.strip():
        return None
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(f"the request body is not valid JSON: {error}") from None
    except RecursionError:
        # Nesting deeper than the decoder's recursion limit (a hostile body, not an event).
        raise bad_request("the request body is nested too deeply") from None
    if not isinstance(document, dict):
        raise bad_request("the request body must be a JSON object")
    return document


def _query_dict(
    descriptor: Descriptor, query: Iterable[tuple[str, str]], body: str, bound: set[str]
) -> dict[str, Any]:
    """The query parameters as a JSON document of `descriptor`: dotted names reach into
    messages, a repeated field takes the parameter repeated."""
    document: dict[str, Any] = {}
    for name, value in query:
        fields = _field_path(descriptor, name)
        path = ".".join(field.name for field in fields)
        if path in bound or (body not in ("", "*") and fields[0].name == body):
            raise bad_request(f"{name!r} cannot be given in the query")
        node = document
        for field in fields[:-1]:
            node = node.setdefault(field.name, {})
        leaf = fields[-1]
        converted = _query_value(leaf, name, value)
        if leaf.is_repeated:
            node.setdefault(leaf.name, []).append(converted)
        elif leaf.name in node:
            raise bad_request(f"query parameter {name!r} is given more than once")
        else:
            node[leaf.name] = converted
    return document


def _field_path(descriptor: Descriptor, name: str) -> list[FieldDescriptor]:
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for part in name.split("."):
        field = None
        if current is not None:
            field = current.fields_by_name.get(part) or current.fields_by_camelcase_name.get(part)
        if field is None:
            raise bad_request(f"unknown query parameter {name!r}")
        fields.append(field)
        current = field.message_type
    return fields


def _query_value(field: FieldDescriptor, name: str, value: str) -> Any:
    if field.type == FieldDescriptor.TYPE_BOOL:
        if value not in ("true", "false"):
            raise bad_request(f"query parameter {name!r} must be true or false")
        return value == "true"
    return value


def _set_path(request: Message, field_path: str, value: str) -> None:
    *parents, leaf = field_path.split(".")
    target = request
    for part in parents:
        target = getattr(target, part)
    setattr(target, leaf, value)


def _derive_update_mask(
    request: Message, body_type: Descriptor, body: dict[str, Any], bound: set[str]
) -> None:
    """PATCH without an update_mask replaces the fields the body names (google.api.http's
    rule for a body bound to one field, as grpc-gateway applies it)."""
    mask_field = request.DESCRIPTOR.fields_by_name.get("update_mask")
    if (
        mask_field is None
        or mask_field.message_type is None
        or mask_field.message_type.full_name != _FIELD_MASK
    ):
        return
    mask = request.update_mask  # type: ignore[attr-defined]
    if mask.paths:
        return
    identity = _IDENTITY_FIELDS | {path.rpartition(".")[2] for path in bound}
    for key in body:
        field = body_type.fields_by_name.get(key) or body_type.fields_by_camelcase_name.get(key)
        if field is not None and field.name not in identity:
            mask.paths.append(field.name)
