"""The HTTP body an endpoint receives (SPEC §4), built from a stored event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .models import Event, PayloadMode


def iso_millis(value: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and a Z, e.g. 2026-11-28T10:00:00.123Z."""
    # isoformat truncates to milliseconds as the format did; it costs a third of strftime,
    # and every delivery body carries two of these.
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def envelope(event: Event, mode: PayloadMode) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "tenant_id": event.tenant_id,
        "entity_id": event.entity_id,
        "occurred_at": iso_millis(event.occurred_at),
        "published_at": iso_millis(event.published_at),
    }
    if mode is PayloadMode.THIN:
        body["data"] = {"id": event.entity_id}
        return body
    body["data"] = event.data
    if event.previous is not None:
        body["previous"] = event.previous
    return body


def encode_body(event: Event, mode: PayloadMode) -> bytes:
    return json.dumps(envelope(event, mode), separators=(",", ":"), ensure_ascii=False).encode()
