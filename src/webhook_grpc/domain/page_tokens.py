"""Keyset page tokens for list RPCs: the (created_at, id) of the last item of a page.

They are not secret: every list query is scoped to the caller's tenant anyway. A token is client
input, so decoding refuses anything this module could not have produced (an id with NUL or
other control characters, a time without a zone or out of range) instead of letting it reach
a query."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from .errors import InvalidArgument

MAX_ID_LENGTH = 64


def encode_page_token(created_at: datetime, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{item_id}".encode()).decode()


def decode_page_token(token: str) -> tuple[datetime, str] | None:
    if not token:
        return None
    refused = InvalidArgument("page_token", "is not a token from an earlier page")
    try:
        created, separator, item_id = base64.urlsafe_b64decode(token).decode().partition("|")
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise refused
        when = when.astimezone(UTC)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise refused from None
    if not separator or not item_id or len(item_id) > MAX_ID_LENGTH or not item_id.isprintable():
        raise refused
    return when, item_id
