"""`Subscriptions`: manage a tenant's webhook endpoints (``client.subscriptions``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from webhook_grpc_client._calls import Caller
from webhook_grpc_client._gen.webhooks.v1 import (
    deliveries_pb2,
    deliveries_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)

__all__ = ["OrderingName", "PayloadModeName", "SigningAlgorithmName", "StatusName", "Subscriptions"]

PayloadModeName = Literal["full", "thin"]
OrderingName = Literal["unordered", "fifo"]
StatusName = Literal["active", "disabled"]
SigningAlgorithmName = Literal["hmac-sha256", "ed25519"]

_PAYLOAD_MODES = {
    "full": subscriptions_pb2.PAYLOAD_MODE_FULL,
    "thin": subscriptions_pb2.PAYLOAD_MODE_THIN,
}
_SIGNING_ALGORITHMS = {
    "hmac-sha256": subscriptions_pb2.SIGNING_ALGORITHM_HMAC_SHA256,
    "ed25519": subscriptions_pb2.SIGNING_ALGORITHM_ED25519,
}
_ORDERINGS = {
    "unordered": subscriptions_pb2.ORDERING_UNORDERED,
    "fifo": subscriptions_pb2.ORDERING_FIFO,
}
_STATUSES = {
    "active": subscriptions_pb2.SUBSCRIPTION_STATUS_ACTIVE,
    "disabled": subscriptions_pb2.SUBSCRIPTION_STATUS_DISABLED,
}


class Subscriptions:
    """Manage a tenant's webhook endpoints (``client.subscriptions``).

    `tenant_id` may be left out with a tenant token (its own tenant). Reads and changes that are
    safe to repeat (`update`, `activate`, `disable`, `replay`) are retried like publishing;
    `create`, `rotate_secret`, `send_test_event` and `delete` are sent once (a retry after a
    lost answer could create a second endpoint or rotate the secret twice).
    """

    def __init__(
        self,
        stub: subscriptions_pb2_grpc.SubscriptionServiceAsyncStub,
        caller: Caller,
        deliveries: deliveries_pb2_grpc.DeliveryServiceAsyncStub | None = None,
    ) -> None:
        self._stub = stub
        self._caller = caller
        self._deliveries = deliveries

    async def create(
        self,
        url: str,
        event_patterns: Sequence[str],
        *,
        tenant_id: str | None = None,
        description: str = "",
        payload_mode: PayloadModeName = "full",
        metadata: Mapping[str, str] | None = None,
        secret: str | None = None,
        filter: str = "",
        headers: Mapping[str, str] | None = None,
        signing_algorithm: SigningAlgorithmName = "hmac-sha256",
        ordering: OrderingName = "unordered",
        rate_limit_per_second: int = 0,
    ) -> subscriptions_pb2.CreateSubscriptionResponse:
        """Register an endpoint for event patterns (exact types, ``"entity.*"`` or ``"*"``).

        Returns the response with ``.subscription`` and ``.secret``: keep the secret to verify
        deliveries, it is not shown again. A ``whsec_`` secret may be supplied; one is generated
        otherwise. `filter` is a CEL expression over the event (``type``, ``entity_id``,
        ``data``, ``previous``): only events it matches are delivered. `headers` (up to 10) are
        sent with every delivery. With ``signing_algorithm="ed25519"`` the service also
        generates a key pair: verify ``webhook-signature`` with ``.subscription.public_key``
        (``whpk_...``); the secret still keys ``X-Webhook-Signature``.
        ``ordering="fifo"`` delivers one at a time in feed order (a failing delivery
        holds the ones behind it through its retries); ``rate_limit_per_second`` caps attempts
        to the endpoint over every dispatcher together (0: no limit; at most 1,000).
        """
        request = subscriptions_pb2.CreateSubscriptionRequest(
            tenant_id=tenant_id or "",
            url=url,
            event_patterns=list(event_patterns),
            description=description,
            payload_mode=_PAYLOAD_MODES[payload_mode],
            metadata=dict(metadata or {}),
            secret=secret or "",
            filter=filter,
            headers=dict(headers or {}),
            signing_algorithm=_SIGNING_ALGORITHMS[signing_algorithm],
            ordering=_ORDERINGS[ordering],
            rate_limit_per_second=rate_limit_per_second,
        )
        response: subscriptions_pb2.CreateSubscriptionResponse = await self._caller.once(
            self._stub.CreateSubscription, request
        )
        return response

    async def get(self, id: str, *, tenant_id: str | None = None) -> subscriptions_pb2.Subscription:
        """One subscription (never its secret); ``NOT_FOUND`` also for another tenant's id."""
        request = subscriptions_pb2.GetSubscriptionRequest(tenant_id=tenant_id or "", id=id)
        response: subscriptions_pb2.GetSubscriptionResponse = await self._caller.retrying(
            self._stub.GetSubscription, request
        )
        return response.subscription

    async def list(
        self, *, tenant_id: str | None = None, status: StatusName | None = None
    ) -> list[subscriptions_pb2.Subscription]:
        """Every subscription of the tenant (all pages), optionally only those in `status`."""
        found: list[subscriptions_pb2.Subscription] = []
        page_token = ""
        while True:
            request = subscriptions_pb2.ListSubscriptionsRequest(
                tenant_id=tenant_id or "",
                page_size=100,
                page_token=page_token,
                status=(
                    _STATUSES[status]
                    if status
                    else subscriptions_pb2.SUBSCRIPTION_STATUS_UNSPECIFIED
                ),
            )
            response: subscriptions_pb2.ListSubscriptionsResponse = await self._caller.retrying(
                self._stub.ListSubscriptions, request
            )
            found.extend(response.subscriptions)
            page_token = response.next_page_token
            if not page_token:
                return found

    async def update(
        self,
        id: str,
        *,
        tenant_id: str | None = None,
        url: str | None = None,
        event_patterns: Sequence[str] | None = None,
        description: str | None = None,
        payload_mode: PayloadModeName | None = None,
        metadata: Mapping[str, str] | None = None,
        filter: str | None = None,
        headers: Mapping[str, str] | None = None,
        ordering: OrderingName | None = None,
        rate_limit_per_second: int | None = None,
    ) -> subscriptions_pb2.Subscription:
        """Replace the fields given (and only those: the update mask names them). An empty
        `filter` removes the filter; `headers` replaces every custom header."""
        subscription = subscriptions_pb2.Subscription(id=id, tenant_id=tenant_id or "")
        paths: list[str] = []
        if url is not None:
            subscription.url = url
            paths.append("url")
        if event_patterns is not None:
            subscription.event_patterns.extend(event_patterns)
            paths.append("event_patterns")
        if description is not None:
            subscription.description = description
            paths.append("description")
        if payload_mode is not None:
            subscription.payload_mode = _PAYLOAD_MODES[payload_mode]
            paths.append("payload_mode")
        if metadata is not None:
            subscription.metadata.update(metadata)
            paths.append("metadata")
        if filter is not None:
            subscription.filter = filter
            paths.append("filter")
        if headers is not None:
            subscription.headers.update(headers)
            paths.append("headers")
        if ordering is not None:
            subscription.ordering = _ORDERINGS[ordering]
            paths.append("ordering")
        if rate_limit_per_second is not None:
            subscription.rate_limit_per_second = rate_limit_per_second
            paths.append("rate_limit_per_second")
        if not paths:
            raise ValueError("update needs at least one field to change")
        request = subscriptions_pb2.UpdateSubscriptionRequest(
            subscription=subscription, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        # Setting the same values again changes nothing: safe to retry.
        response: subscriptions_pb2.UpdateSubscriptionResponse = await self._caller.retrying(
            self._stub.UpdateSubscription, request
        )
        return response.subscription

    async def delete(self, id: str, *, tenant_id: str | None = None) -> None:
        """Remove the subscription and cancel its pending deliveries."""
        await self._caller.once(
            self._stub.DeleteSubscription,
            subscriptions_pb2.DeleteSubscriptionRequest(tenant_id=tenant_id or "", id=id),
        )

    async def activate(
        self, id: str, *, tenant_id: str | None = None
    ) -> subscriptions_pb2.Subscription:
        """Resume deliveries (and forget the failures that disabled it)."""
        return await self._state_change(
            self._stub.ActivateSubscription,
            subscriptions_pb2.ActivateSubscriptionRequest(tenant_id=tenant_id or "", id=id),
        )

    async def disable(
        self, id: str, *, tenant_id: str | None = None
    ) -> subscriptions_pb2.Subscription:
        """Stop deliveries (reason MANUAL); events keep flowing into the feed."""
        return await self._state_change(
            self._stub.DisableSubscription,
            subscriptions_pb2.DisableSubscriptionRequest(tenant_id=tenant_id or "", id=id),
        )

    async def rotate_secret(
        self,
        id: str,
        *,
        tenant_id: str | None = None,
        secret: str | None = None,
        grace_period: timedelta | None = None,
    ) -> subscriptions_pb2.RotateSubscriptionSecretResponse:
        """Replace the secret (given, or generated); returns ``.subscription`` and ``.secret``.

        An Ed25519 subscription also gets a new key pair: ``.subscription.public_key`` is the
        new public key.

        The old secret keeps signing alongside the new one for `grace_period` (server default
        24 hours; ``timedelta(0)`` ends it at once).
        """
        request = subscriptions_pb2.RotateSubscriptionSecretRequest(
            tenant_id=tenant_id or "", id=id, secret=secret or ""
        )
        if grace_period is not None:
            grace = duration_pb2.Duration()
            grace.FromTimedelta(grace_period)
            request.grace_period.CopyFrom(grace)
        response: subscriptions_pb2.RotateSubscriptionSecretResponse = await self._caller.once(
            self._stub.RotateSubscriptionSecret, request
        )
        return response

    async def send_test_event(
        self, id: str, *, tenant_id: str | None = None
    ) -> subscriptions_pb2.SendTestEventResponse:
        """Deliver a ``webhook.test`` event to this subscription only; returns the event and the
        delivery id."""
        response: subscriptions_pb2.SendTestEventResponse = await self._caller.once(
            self._stub.SendTestEvent,
            subscriptions_pb2.SendTestEventRequest(tenant_id=tenant_id or "", id=id),
        )
        return response

    async def replay(
        self,
        id: str,
        *,
        tenant_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        event_patterns: Sequence[str] = (),
    ) -> deliveries_pb2.ReplayEventsResponse:
        """Queue deliveries of stored events published in [since, until) that match the
        subscription (and `event_patterns`, if given) and were not delivered to it (no delivery
        that succeeded or is still pending; failed ones are sent again); returns ``.queued``.
        Repeating it queues nothing new. When ``.has_more``, call again with
        ``since=response.next_since.ToDatetime(tzinfo=UTC)``."""
        if self._deliveries is None:
            raise RuntimeError("this Subscriptions was made without a DeliveryService stub")
        request = deliveries_pb2.ReplayEventsRequest(
            tenant_id=tenant_id or "", subscription_id=id, event_patterns=list(event_patterns)
        )
        if since is not None:
            request.since.CopyFrom(_timestamp(since))
        if until is not None:
            request.until.CopyFrom(_timestamp(until))
        # Events already queued are skipped: safe to retry.
        response: deliveries_pb2.ReplayEventsResponse = await self._caller.retrying(
            self._deliveries.ReplayEvents, request
        )
        return response

    async def _state_change(
        self, method: Callable[..., Awaitable[Any]], request: Any
    ) -> subscriptions_pb2.Subscription:
        # Activating an active (or disabling a disabled) subscription is a no-op: safe to retry.
        response = await self._caller.retrying(method, request)
        subscription: subscriptions_pb2.Subscription = response.subscription
        return subscription


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp
