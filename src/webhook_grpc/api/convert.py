"""Proto messages to domain records and back. No rules here: only shapes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from webhook_grpc._gen.webhooks.v1 import (
    deliveries_pb2,
    events_pb2,
    subscriptions_pb2,
)
from webhook_grpc.domain import models
from webhook_grpc.domain.errors import InvalidArgument
from webhook_grpc.domain.projection import Classification
from webhook_grpc.domain.subscription_health import SubscriptionHealth

from .storable_text import NUL, ContainsNul, nul_refusal

SUBSCRIPTION_STATUS = {
    models.SubscriptionStatus.ACTIVE: subscriptions_pb2.SUBSCRIPTION_STATUS_ACTIVE,
    models.SubscriptionStatus.DISABLED: subscriptions_pb2.SUBSCRIPTION_STATUS_DISABLED,
}
DISABLED_REASON = {
    models.DisabledReason.MANUAL: subscriptions_pb2.DISABLED_REASON_MANUAL,
    models.DisabledReason.FAILURE_RATE: subscriptions_pb2.DISABLED_REASON_FAILURE_RATE,
    models.DisabledReason.ENDPOINT_GONE: subscriptions_pb2.DISABLED_REASON_ENDPOINT_GONE,
}
PAYLOAD_MODE = {
    models.PayloadMode.FULL: subscriptions_pb2.PAYLOAD_MODE_FULL,
    models.PayloadMode.THIN: subscriptions_pb2.PAYLOAD_MODE_THIN,
}
SIGNING_ALGORITHM = {
    models.SigningAlgorithm.HMAC_SHA256: subscriptions_pb2.SIGNING_ALGORITHM_HMAC_SHA256,
    models.SigningAlgorithm.ED25519: subscriptions_pb2.SIGNING_ALGORITHM_ED25519,
}
ORDERING = {
    models.Ordering.UNORDERED: subscriptions_pb2.ORDERING_UNORDERED,
    models.Ordering.FIFO: subscriptions_pb2.ORDERING_FIFO,
}
DELIVERY_STATUS = {
    models.DeliveryStatus.PENDING: deliveries_pb2.DELIVERY_STATUS_PENDING,
    models.DeliveryStatus.SUCCEEDED: deliveries_pb2.DELIVERY_STATUS_SUCCEEDED,
    models.DeliveryStatus.FAILED: deliveries_pb2.DELIVERY_STATUS_FAILED,
    models.DeliveryStatus.CANCELLED: deliveries_pb2.DELIVERY_STATUS_CANCELLED,
}
ATTEMPT_ERROR = {
    models.AttemptError.TIMEOUT: deliveries_pb2.ATTEMPT_ERROR_TIMEOUT,
    models.AttemptError.CONNECT: deliveries_pb2.ATTEMPT_ERROR_CONNECT,
    models.AttemptError.DNS: deliveries_pb2.ATTEMPT_ERROR_DNS,
    models.AttemptError.TLS: deliveries_pb2.ATTEMPT_ERROR_TLS,
    models.AttemptError.HTTP_STATUS: deliveries_pb2.ATTEMPT_ERROR_HTTP_STATUS,
    models.AttemptError.REFUSED_TARGET: deliveries_pb2.ATTEMPT_ERROR_REFUSED_TARGET,
}
CLASSIFICATION = {
    Classification.PUBLIC: events_pb2.CLASSIFICATION_PUBLIC,
    Classification.INTERNAL: events_pb2.CLASSIFICATION_INTERNAL,
    Classification.CONFIDENTIAL: events_pb2.CLASSIFICATION_CONFIDENTIAL,
    Classification.RESTRICTED: events_pb2.CLASSIFICATION_RESTRICTED,
}


K = TypeVar("K")


def enum_from_proto(
    mapping: Mapping[K, int], value: int, field: str, *, optional: bool = True
) -> K | None:
    """A domain enum from a proto enum value; UNSPECIFIED (0) is None when optional."""
    if value == 0 and optional:
        return None
    found = next((key for key, number in mapping.items() if number == value), None)
    if found is None:
        raise InvalidArgument(field, f"unknown value {value}")
    return found


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    message = timestamp_pb2.Timestamp()
    set_timestamp(message, value)
    return message


def set_timestamp(message: timestamp_pb2.Timestamp, value: datetime) -> None:
    """`value` written into `message` (a field of another message, which is then present), as
    Timestamp.FromDatetime does (naive means UTC) at a quarter of its cost."""
    delta = (value if value.tzinfo else value.replace(tzinfo=UTC)) - _EPOCH
    message.seconds = delta.days * 86_400 + delta.seconds
    message.nanos = delta.microseconds * 1000
    if not (message.seconds or message.nanos):
        message.SetInParent()  # zeros alone would leave the field unset


def from_timestamp(message: timestamp_pb2.Timestamp, field: str) -> datetime:
    try:
        return message.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(field, "is not a valid timestamp") from None


def duration(value: timedelta) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(value)
    return message


def from_duration(message: duration_pb2.Duration, field: str) -> timedelta:
    try:
        return message.ToTimedelta()
    except (ValueError, OverflowError):
        raise InvalidArgument(field, "is not a valid duration") from None


def struct_to_dict(message: struct_pb2.Struct, field: str = "data") -> dict[str, Any]:
    """The Struct as plain JSON values, as json_format.MessageToDict gives them (numbers are
    floats, an unset value is None), without its per-field descriptor lookups. What neither
    backend can store is refused naming `field`: NaN and infinities, and NUL in a key or a
    string (named down to its path, see storable_text)."""
    try:
        return _fields_to_dict(message)
    except ValueError as error:
        raise InvalidArgument(field, f"is not representable as JSON: {error}") from None
    except ContainsNul:
        raise nul_refusal(message, field) from None


def _fields_to_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    value = {key: _value(item) for key, item in message.fields.items()}
    # One search over all the keys at once costs less than one per key.
    if NUL in "".join(value):
        raise ContainsNul
    return value


def _value(message: struct_pb2.Value) -> Any:
    kind = message.WhichOneof("kind")
    if kind == "string_value":
        text = message.string_value
        if NUL in text:
            raise ContainsNul
        return text
    if kind == "number_value":
        number = message.number_value
        if not math.isfinite(number):
            raise ValueError(f"{number} has no JSON form")
        return number
    if kind == "bool_value":
        return message.bool_value
    if kind == "struct_value":
        return _fields_to_dict(message.struct_value)
    if kind == "list_value":
        return [_value(item) for item in message.list_value.values]
    return None  # null_value, or unset (which json_format also reads as null)


def dict_to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    fill_struct(message, value)
    return message


def fill_struct(message: struct_pb2.Struct, value: Mapping[str, Any]) -> None:
    """As `message.update(value)`, which dispatches on each value's type in Python, with the
    commonest value, a string, set directly (twice as fast on payloads of strings). The
    struct is present in its parent afterwards, even when `value` is empty."""
    message.SetInParent()
    fields = message.fields
    for key, item in value.items():
        if type(item) is str:
            fields[key].string_value = item
        else:
            message[key] = item


def subscription(
    value: models.Subscription, health: SubscriptionHealth | None = None
) -> subscriptions_pb2.Subscription:
    return subscriptions_pb2.Subscription(
        id=value.id,
        tenant_id=value.tenant_id,
        url=value.url,
        event_patterns=list(value.event_patterns),
        description=value.description,
        status=SUBSCRIPTION_STATUS[value.status],
        disabled_reason=(
            DISABLED_REASON[value.disabled_reason]
            if value.disabled_reason
            else subscriptions_pb2.DISABLED_REASON_UNSPECIFIED
        ),
        payload_mode=PAYLOAD_MODE[value.payload_mode],
        metadata=value.metadata,
        created_at=timestamp(value.created_at),
        updated_at=timestamp(value.updated_at),
        disabled_at=timestamp(value.disabled_at),
        previous_secret_expires_at=timestamp(value.previous_secret_expires_at),
        signing_algorithm=SIGNING_ALGORITHM[value.signing_algorithm],
        public_key=value.public_key,
        filter=value.filter,
        headers=value.headers,
        ordering=ORDERING[value.ordering],
        rate_limit_per_second=value.rate_limit_per_second,
        health=subscription_health(health) if health is not None else None,
    )


def subscription_health(value: SubscriptionHealth) -> subscriptions_pb2.SubscriptionHealth:
    return subscriptions_pb2.SubscriptionHealth(
        failure_window=duration(value.failure_window),
        attempt_count=value.attempt_count,
        failed_count=value.failed_count,
        last_attempt=attempt(value.last_attempt) if value.last_attempt is not None else None,
    )


def event(value: models.Event) -> events_pb2.Event:
    message = events_pb2.Event()
    fill_event(message, value)
    return message


def fill_event(message: events_pb2.Event, value: models.Event) -> None:
    """`value` written into the empty `message`, e.g. one from a repeated field's `add()`:
    building the parts as messages of their own and copying them in costs as much again
    (the feed sends thousands a second)."""
    message.id = value.id
    message.tenant_id = value.tenant_id
    message.type = value.type
    message.entity_id = value.entity_id
    fill_struct(message.data, value.data)
    if value.previous is not None:
        fill_struct(message.previous, value.previous)
    set_timestamp(message.occurred_at, value.occurred_at)
    set_timestamp(message.published_at, value.published_at)
    message.cursor = value.cursor


def delivery(value: models.Delivery) -> deliveries_pb2.Delivery:
    return deliveries_pb2.Delivery(
        id=value.id,
        tenant_id=value.tenant_id,
        event_id=value.event_id,
        subscription_id=value.subscription_id,
        event_type=value.event_type,
        status=DELIVERY_STATUS[value.status],
        attempt_count=value.attempt_count,
        next_attempt_at=timestamp(value.next_attempt_at),
        created_at=timestamp(value.created_at),
        updated_at=timestamp(value.updated_at),
        attempts=[attempt(a) for a in value.attempts],
    )


def attempt(value: models.Attempt) -> deliveries_pb2.DeliveryAttempt:
    return deliveries_pb2.DeliveryAttempt(
        attempt_number=value.attempt_number,
        attempted_at=timestamp(value.attempted_at),
        status_code=value.status_code or 0,
        latency=duration(value.latency),
        error=ATTEMPT_ERROR[value.error]
        if value.error
        else deliveries_pb2.ATTEMPT_ERROR_UNSPECIFIED,
        error_message=value.error_message,
        response_body=value.response_body,
    )
