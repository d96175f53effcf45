"""A rule every request shares: its text must be storable as text on both backends.

PostgreSQL `text` cannot hold NUL (U+0000), and PostgreSQL refuses a `\\u0000` escape wherever it
parses JSON (`json_to_recordset`, `->>`, jsonb), so such a string would fail deep in a query
instead of being refused as the client's mistake, while SQLite would store it. Every other
character is storable on both. Lone surrogates cannot arrive: they are not valid UTF-8, so such
a request fails to decode (see `decoding.py`).

Typed string fields are checked once for every RPC (see `errors.unary`), so a new RPC cannot
forget them. Free-form data (`google.protobuf.Struct` keys and values, however nested) is
checked as `convert.struct_to_dict` turns it into JSON, the one way it reaches storage: there it
costs a substring search per string, where a walk of its own would cost as much again as the
conversion (thousands of values in a 500-event batch). Both refuse with the path named here."""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from webhook_grpc.domain.errors import InvalidArgument

NUL = "\x00"
_REASON = "must not contain NUL (U+0000) characters"
_FREE_FORM = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ContainsNul(Exception):
    """Raised by a conversion that found NUL somewhere in a Struct; `nul_refusal` names where."""


def require_storable_text(message: Message, prefix: str = "") -> None:
    """Raise InvalidArgument naming the first string field (dotted proto path, `[i]` for list
    items, `[key]` for map values) that contains a NUL character."""
    if message.DESCRIPTOR.full_name in _FREE_FORM:
        return
    for field, value in message.ListFields():
        name = prefix + field.name
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            value_field = entry.fields_by_name["value"]
            for key, item in value.items():
                _check_scalar(entry.fields_by_name["key"], key, f"{name}[{key!r}]")
                _check(value_field, item, f"{name}[{key!r}]")
        elif field.is_repeated:
            for index, item in enumerate(value):
                _check(field, item, f"{name}[{index}]")
        else:
            _check(field, value, name)


def _check(field: FieldDescriptor, value: Any, name: str) -> None:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        require_storable_text(value, name + ".")
    else:
        _check_scalar(field, value, name)


def _check_scalar(field: FieldDescriptor, value: Any, name: str) -> None:
    if field.type == FieldDescriptor.TYPE_STRING and NUL in value:
        raise InvalidArgument(name, _REASON)


def nul_refusal(message: struct_pb2.Struct, field: str) -> InvalidArgument:
    """The refusal of a Struct holding NUL, naming the first key or string value that does by
    its JSON path under `field` (`data.attrs.tags[1]`, `data['odd key']`)."""
    try:
        _check_object(message, field)
    except InvalidArgument as refusal:
        return refusal
    return InvalidArgument(field, _REASON)


def _check_object(message: struct_pb2.Struct, name: str) -> None:
    for key, value in message.fields.items():
        member = f"{name}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{name}[{key!r}]"
        if NUL in key:
            raise InvalidArgument(member, "field names " + _REASON)
        _check_value(value, member)


def _check_value(message: struct_pb2.Value, name: str) -> None:
    kind = message.WhichOneof("kind")
    if kind == "string_value" and NUL in message.string_value:
        raise InvalidArgument(name, _REASON)
    if kind == "struct_value":
        _check_object(message.struct_value, name)
    elif kind == "list_value":
        for index, item in enumerate(message.list_value.values):
            _check_value(item, f"{name}[{index}]")
