"""`WebhooksClient`: publish events, manage subscriptions and stream the feed over grpc.aio."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, cast

import grpc
from google.protobuf import struct_pb2, timestamp_pb2

from webhook_grpc_client._calls import Caller, Metadata
from webhook_grpc_client._gen.webhooks.v1 import (
    deliveries_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    feed_pb2,
    feed_pb2_grpc,
    subscriptions_pb2_grpc,
)
from webhook_grpc_client.feed import FEED_RETRY, Feed
from webhook_grpc_client.retry import RetryPolicy
from webhook_grpc_client.subscriptions import Subscriptions

__all__ = ["NewEvent", "WebhooksClient"]


@dataclass(frozen=True)
class NewEvent:
    """One event to publish with `WebhooksClient.publish_many`; fields as in `publish`."""

    tenant_id: str
    type: str
    entity_id: str
    data: Mapping[str, Any]
    previous: Mapping[str, Any] | None = None
    occurred_at: datetime | None = None
    idempotency_key: str | None = None


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(value))
    return message


def _publish_request(event: NewEvent) -> events_pb2.PublishEventRequest:
    request = events_pb2.PublishEventRequest(
        tenant_id=event.tenant_id,
        type=event.type,
        entity_id=event.entity_id,
        data=_struct(event.data),
        # Generated once, before the first attempt: every retry carries the same key, so a
        # retry after a commit whose answer was lost returns the original event.
        idempotency_key=event.idempotency_key or str(uuid.uuid4()),
    )
    if event.previous is not None:
        request.previous.CopyFrom(_struct(event.previous))
    if event.occurred_at is not None:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(event.occurred_at)
        request.occurred_at.CopyFrom(stamp)
    return request


class WebhooksClient:
    """An asyncio client of a webhook-grpc server.

    Args:
        target: the server address, ``host:port`` (e.g. ``127.0.0.1:50051``).
        token: a bearer token, sent as ``authorization: Bearer <token>`` on every call; ``None``
            for a server without tokens (development).
        channel: a ready ``grpc.aio.Channel`` to use instead of a plaintext channel to `target`
            (e.g. ``grpc.aio.secure_channel(...)`` for TLS); the caller keeps ownership of it.
        retry: backoff for calls that are safe to retry (publishing, reads) when the server
            answers ``UNAVAILABLE`` or the deadline passes.
        timeout: the deadline of each unary attempt, in seconds; ``None`` for none.

    Use it as ``async with WebhooksClient(...) as client:`` or call `close`. Errors from the
    server are raised as ``grpc.aio.AioRpcError`` (``.code()``, ``.details()``).
    """

    def __init__(
        self,
        target: str,
        token: str | None = None,
        *,
        channel: grpc.aio.Channel | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = 10.0,
    ) -> None:
        self.target = target
        self._owns_channel = channel is None
        self._channel = channel if channel is not None else grpc.aio.insecure_channel(target)
        metadata: Metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._caller = Caller(metadata, timeout, retry or RetryPolicy())
        # The stubs' constructors return their async variants for an aio channel.
        self._events = cast(
            "events_pb2_grpc.EventServiceAsyncStub", events_pb2_grpc.EventServiceStub(self._channel)
        )
        self._feed = cast(
            "feed_pb2_grpc.FeedServiceAsyncStub", feed_pb2_grpc.FeedServiceStub(self._channel)
        )
        subscriptions = cast(
            "subscriptions_pb2_grpc.SubscriptionServiceAsyncStub",
            subscriptions_pb2_grpc.SubscriptionServiceStub(self._channel),
        )
        #: Subscription management: ``client.subscriptions.create(...)`` and friends.
        deliveries = cast(
            "deliveries_pb2_grpc.DeliveryServiceAsyncStub",
            deliveries_pb2_grpc.DeliveryServiceStub(self._channel),
        )
        self.subscriptions = Subscriptions(subscriptions, self._caller, deliveries)

    @property
    def channel(self) -> grpc.aio.Channel:
        """The underlying channel, e.g. for stubs of `webhook_grpc_client.v1` not wrapped here."""
        return self._channel

    @property
    def metadata(self) -> Metadata:
        """The call metadata (the authorization header) to pass to such stubs."""
        return self._caller.metadata

    async def close(self) -> None:
        """Close the channel (unless it was passed in) and cancel its calls."""
        if self._owns_channel:
            await self._channel.close()

    async def __aenter__(self) -> WebhooksClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def publish(
        self,
        tenant_id: str,
        type: str,
        entity_id: str,
        data: Mapping[str, Any],
        previous: Mapping[str, Any] | None = None,
        occurred_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> events_pb2.Event:
        """Publish one event; returns it as stored (id, cursor, projected data).

        Args:
            tenant_id: the tenant the event belongs to.
            type: a registered event type, e.g. ``"product.price_changed"``.
            entity_id: the id of the entity that changed.
            data: the entity after the change (JSON-like); fields its schema does not declare
                public or internal are dropped by the server.
            previous: the prior values of the fields that changed.
            occurred_at: when it happened (timezone-aware; naive means UTC); default: now.
            idempotency_key: the same key (per tenant) returns the original event instead of
                publishing twice. A random one is used when not given, so the client's own
                retries (on ``UNAVAILABLE`` and ``DEADLINE_EXCEEDED``) never duplicate an event.
        """
        request = _publish_request(
            NewEvent(tenant_id, type, entity_id, data, previous, occurred_at, idempotency_key)
        )
        response: events_pb2.PublishEventResponse = await self._caller.retrying(
            self._events.PublishEvent, request
        )
        return response.event

    async def publish_many(self, events: Iterable[NewEvent]) -> list[events_pb2.Event]:
        """Publish up to 500 events atomically (all or none); returns them in order.

        Each event without an idempotency key gets a random one, so retries are safe as in
        `publish`.
        """
        request = events_pb2.PublishEventsRequest(events=[_publish_request(e) for e in events])
        response: events_pb2.PublishEventsResponse = await self._caller.retrying(
            self._events.PublishEvents, request
        )
        return list(response.events)

    def feed(
        self,
        tenant_id: str | None = None,
        after_cursor: str = "",
        event_patterns: Sequence[str] = (),
        entity_id: str = "",
        from_latest: bool = False,
        *,
        retry: RetryPolicy = FEED_RETRY,
    ) -> Feed:
        """Stream a tenant's events: the backlog after `after_cursor`, then live events.

        Args:
            tenant_id: the tenant; may be left out with a tenant token (its own tenant).
            after_cursor: start after this cursor (from an event, a heartbeat or `Feed.cursor`);
                empty means the earliest retained event.
            event_patterns: exact types, ``"entity.*"`` or ``"*"``; empty means every type.
            entity_id: only events of this entity.
            from_latest: start at the current head (only events published from now on).
            retry: reconnection backoff; the feed gives up after `retry.max_attempts`
                consecutive failed connections.

        Returns a `Feed`: ``async for event in client.feed("acme"): ...``; its ``cursor`` is
        where a resumed feed continues. Reconnection after a disconnect is automatic.
        """
        request = feed_pb2.StreamEventsRequest(
            tenant_id=tenant_id or "",
            after_cursor=after_cursor,
            from_latest=from_latest,
            event_patterns=list(event_patterns),
            entity_id=entity_id,
        )
        return Feed(self._feed, request, metadata=self._caller.metadata, retry=retry)
