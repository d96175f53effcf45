"""EventService servicer: publishing and the type registry."""

from __future__ import annotations

from typing import Any

from webhook_grpc._gen.webhooks.v1 import events_pb2 as pb
from webhook_grpc._gen.webhooks.v1 import events_pb2_grpc
from webhook_grpc.domain.access import Principal, Role
from webhook_grpc.domain.projection import Classification
from webhook_grpc.services.publishing import EventDraft, Publisher
from webhook_grpc.services.registry import EventTypeInfo, RegistryService

from . import convert
from .auth import Authenticator, scoped_tenant
from .errors import unary
from .tracing import trace_parent


class EventServicer(events_pb2_grpc.EventServiceServicer):
    def __init__(
        self, auth: Authenticator, publisher: Publisher, registry: RegistryService
    ) -> None:
        self._auth = auth
        self._publisher = publisher
        self._registry = registry

    @unary
    async def PublishEvent(
        self, request: pb.PublishEventRequest, context: Any
    ) -> pb.PublishEventResponse:
        principal = self._auth.authenticate(context, Role.PUBLISHER)
        [published] = await self._publisher.publish(
            [_draft(principal, request, "")], trace_parent=trace_parent(context)
        )
        return pb.PublishEventResponse(
            event=convert.event(published.event), duplicate=published.duplicate
        )

    @unary
    async def PublishEvents(
        self, request: pb.PublishEventsRequest, context: Any
    ) -> pb.PublishEventsResponse:
        principal = self._auth.authenticate(context, Role.PUBLISHER)
        drafts = [
            _draft(principal, item, f"events[{index}].")
            for index, item in enumerate(request.events)
        ]
        published = await self._publisher.publish(
            drafts, batch=True, trace_parent=trace_parent(context)
        )
        return pb.PublishEventsResponse(events=[convert.event(p.event) for p in published])

    @unary
    async def RegisterEventType(
        self, request: pb.RegisterEventTypeRequest, context: Any
    ) -> pb.RegisterEventTypeResponse:
        principal = self._auth.authenticate(context, Role.PUBLISHER)
        fields = [
            (
                rule.path,
                convert.enum_from_proto(
                    convert.CLASSIFICATION, rule.classification, f"fields[{index}].classification"
                ),
            )
            for index, rule in enumerate(request.fields)
        ]
        info = await self._registry.register(
            request.type,
            request.description,
            [(path, c if isinstance(c, Classification) else None) for path, c in fields],
            may_make_less_private=principal.role is Role.ADMIN,
        )
        return pb.RegisterEventTypeResponse(event_type=_event_type(info))

    @unary
    async def ListEventTypes(
        self, request: pb.ListEventTypesRequest, context: Any
    ) -> pb.ListEventTypesResponse:
        self._auth.authenticate(context, Role.PUBLISHER, Role.TENANT)
        infos = await self._registry.list(request.entity)
        return pb.ListEventTypesResponse(event_types=[_event_type(i) for i in infos])


def _draft(principal: Principal, request: pb.PublishEventRequest, prefix: str) -> EventDraft:
    return EventDraft(
        tenant_id=scoped_tenant(principal, request.tenant_id, f"{prefix}tenant_id") or "",
        type=request.type,
        entity_id=request.entity_id,
        data=convert.struct_to_dict(request.data, f"{prefix}data"),
        previous=(
            convert.struct_to_dict(request.previous, f"{prefix}previous")
            if request.HasField("previous")
            else None
        ),
        occurred_at=(
            convert.from_timestamp(request.occurred_at, f"{prefix}occurred_at")
            if request.HasField("occurred_at")
            else None
        ),
        idempotency_key=request.idempotency_key,
    )


def _event_type(info: EventTypeInfo) -> pb.EventType:
    return pb.EventType(
        type=info.event_type.type,
        entity=info.event_type.entity,
        description=info.event_type.description,
        fields=[
            pb.FieldRule(path=path, classification=convert.CLASSIFICATION[c])
            for path, c in sorted(info.fields.items())
        ],
        built_in=info.event_type.built_in,
        created_at=convert.timestamp(info.event_type.created_at),
        updated_at=convert.timestamp(info.event_type.updated_at),
    )
