"""Keyset page tokens for list RPCs: the (created_at, id) of the last item of a page.

They are not secret: every list query is scoped to the caller's tenant anyway."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from .errors import InvalidArgument


def encode_page_token(created_at: datetime, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{item_id}".encode()).decode()


def decode_page_token(token: str) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        created, separator, item_id = base64.urlsafe_b64decode(token).decode().partition("|")
        when = datetime.fromisoformat(created)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        when, separator = None, ""
    if when is None or not separator or when.tzinfo is None:
        raise InvalidArgument("page_token", "is not a token from an earlier page")
    return when, item_id
