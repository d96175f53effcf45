"""FeedService servicer: paged and streamed reads of a tenant's events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from webhook_grpc._gen.webhooks.v1 import feed_pb2 as pb
from webhook_grpc._gen.webhooks.v1 import feed_pb2_grpc
from webhook_grpc.domain.access import Role
from webhook_grpc.domain.models import Event
from webhook_grpc.services.feed import FeedQuery, FeedService, StreamMessage

from . import convert
from .auth import Authenticator, required_tenant
from .errors import streaming, unary


class FeedServicer(feed_pb2_grpc.FeedServiceServicer):
    def __init__(self, auth: Authenticator, feed: FeedService) -> None:
        self._auth = auth
        self._feed = feed

    def _query(
        self, context: Any, request: pb.ListEventsRequest | pb.StreamEventsRequest
    ) -> FeedQuery:
        principal = self._auth.authenticate(context, Role.TENANT)
        return FeedQuery(
            tenant_id=required_tenant(principal, request.tenant_id),
            after_cursor=request.after_cursor,
            patterns=tuple(request.event_patterns),
            entity_id=request.entity_id,
        )

    @unary
    async def ListEvents(
        self, request: pb.ListEventsRequest, context: Any
    ) -> pb.ListEventsResponse:
        page = await self._feed.page(self._query(context, request), request.page_size)
        response = pb.ListEventsResponse(next_cursor=page.next_cursor, has_more=page.has_more)
        _add_events(response.events, page.events)
        return response

    # Writes with context.write (see `streaming`), which the generated stub does not declare.
    @streaming
    async def StreamEvents(  # type: ignore[override]
        self, request: pb.StreamEventsRequest, context: Any
    ) -> None:
        query = self._query(context, request)

        async def send(message: StreamMessage) -> None:
            await context.write(_stream_response(message))

        await self._feed.stream(query, request.from_latest, send)


def _stream_response(message: StreamMessage) -> pb.StreamEventsResponse:
    if message.events:
        response = pb.StreamEventsResponse(cursor=message.cursor)
        _add_events(response.events, message.events)
        return response
    return pb.StreamEventsResponse(
        cursor=message.cursor,
        heartbeat=pb.Heartbeat(cursor=message.cursor, sent_at=convert.timestamp(datetime.now(UTC))),
    )


def _add_events(into: Any, events: Sequence[Event]) -> None:
    """`events` appended to the repeated field `into`, each written in place."""
    add = into.add
    for event in events:
        convert.fill_event(add(), event)
