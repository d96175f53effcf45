"""How the client commands print: aligned tables and fields for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from webhook_grpc_client import Event, Subscription
from webhook_grpc_client.v1 import subscriptions_pb2


def message_json(message: Message) -> dict[str, Any]:
    """A message as JSON, with the proto field names (``tenant_id``, not ``tenantId``)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def emit_json(value: Any) -> None:
    """One JSON document on one line (a stream of them is NDJSON)."""
    print(json.dumps(value, ensure_ascii=False, sort_keys=True), flush=True)


def timestamp(value: timestamp_pb2.Timestamp) -> str:
    return value.ToJsonString() if value.seconds or value.nanos else ""


def compact(value: struct_pb2.Struct) -> str:
    return json.dumps(json_format.MessageToDict(value), ensure_ascii=False, separators=(",", ":"))


def emit_fields(pairs: Iterable[tuple[str, str]]) -> None:
    """``name  value`` lines with the values aligned; empty values are left out."""
    shown = [(name, value) for name, value in pairs if value]
    width = max((len(name) for name, _ in shown), default=0)
    for name, value in shown:
        print(f"{name.ljust(width)}  {value}", flush=True)


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for row in [list(headers), *rows]:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(),
            flush=True,
        )


def _short(enum_name: str, prefix: str) -> str:
    return enum_name.removeprefix(prefix).lower()


def status(subscription: Subscription) -> str:
    """``active``, or ``disabled (failure_rate)``."""
    name = _short(
        subscriptions_pb2.SubscriptionStatus.Name(subscription.status), "SUBSCRIPTION_STATUS_"
    )
    if subscription.disabled_reason:
        reason = subscriptions_pb2.DisabledReason.Name(subscription.disabled_reason)
        name += f" ({_short(reason, 'DISABLED_REASON_')})"
    return name


def subscription_fields(subscription: Subscription) -> list[tuple[str, str]]:
    mode = subscriptions_pb2.PayloadMode.Name(subscription.payload_mode)
    return [
        ("id", subscription.id),
        ("tenant_id", subscription.tenant_id),
        ("url", subscription.url),
        ("event_patterns", ", ".join(subscription.event_patterns)),
        ("description", subscription.description),
        ("status", status(subscription)),
        ("payload_mode", _short(mode, "PAYLOAD_MODE_")),
        ("ordering", _short(subscriptions_pb2.Ordering.Name(subscription.ordering), "ORDERING_")),
        (
            "rate_limit",
            f"{subscription.rate_limit_per_second}/s" if subscription.rate_limit_per_second else "",
        ),
        ("metadata", ", ".join(f"{k}={v}" for k, v in sorted(subscription.metadata.items()))),
        ("filter", subscription.filter),
        ("headers", ", ".join(f"{k}: {v}" for k, v in sorted(subscription.headers.items()))),
        ("created_at", timestamp(subscription.created_at)),
        ("updated_at", timestamp(subscription.updated_at)),
        ("disabled_at", timestamp(subscription.disabled_at)),
        ("previous_secret_expires_at", timestamp(subscription.previous_secret_expires_at)),
        *signing_fields(subscription),
    ]


def signing_fields(subscription: Subscription) -> list[tuple[str, str]]:
    """Shown for Ed25519 subscriptions only: HMAC is the default and has no public key."""
    if subscription.signing_algorithm != subscriptions_pb2.SIGNING_ALGORITHM_ED25519:
        return []
    return [("signing_algorithm", "ed25519"), ("public_key", subscription.public_key)]


def subscription_rows(subscriptions: Sequence[Subscription]) -> list[list[str]]:
    return [
        [s.id, status(s), ",".join(s.event_patterns), s.url, timestamp(s.created_at)]
        for s in subscriptions
    ]


SUBSCRIPTION_HEADERS = ("ID", "STATUS", "PATTERNS", "URL", "CREATED")


def event_fields(event: Event) -> list[tuple[str, str]]:
    return [
        ("id", event.id),
        ("tenant_id", event.tenant_id),
        ("type", event.type),
        ("entity_id", event.entity_id),
        ("occurred_at", timestamp(event.occurred_at)),
        ("published_at", timestamp(event.published_at)),
        ("data", compact(event.data)),
        ("previous", compact(event.previous) if event.HasField("previous") else ""),
        ("cursor", event.cursor),
    ]


def event_line(event: Event) -> str:
    """One line of ``feed tail``: when, id, type, entity, cursor (to resume with --after), data."""
    return "  ".join(
        [
            timestamp(event.published_at),
            event.id,
            event.type,
            event.entity_id,
            event.cursor,
            compact(event.data),
        ]
    )
