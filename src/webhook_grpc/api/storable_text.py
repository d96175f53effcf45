"""A rule every request shares: its text fields must be storable as text on both backends.

PostgreSQL `text` cannot hold NUL (U+0000), so such a string would fail deep in a query instead
of being refused as the client's mistake. Checked once for every RPC (see `errors.unary`), so a
new RPC cannot forget it. Free-form data (`google.protobuf.Struct`) is exempt: it is stored as
JSON, where NUL is escaped."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from webhook_grpc.domain.errors import InvalidArgument

_FREE_FORM = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)


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
    if field.type == FieldDescriptor.TYPE_STRING and "\x00" in value:
        raise InvalidArgument(name, "must not contain NUL (U+0000) characters")
