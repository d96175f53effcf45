"""DeliveryService servicer."""

from __future__ import annotations

from typing import Any

from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as pb
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2_grpc
from webhook_grpc.domain.access import Role
from webhook_grpc.domain.errors import InvalidArgument
from webhook_grpc.domain.models import DeliveryStatus
from webhook_grpc.services.deliveries import DeliveryService
from webhook_grpc.services.replay import EventReplay, ReplayWindow

from . import convert
from .auth import Authenticator, required_tenant, scoped_tenant
from .errors import unary


class DeliveryServicer(deliveries_pb2_grpc.DeliveryServiceServicer):
    def __init__(
        self, auth: Authenticator, deliveries: DeliveryService, replay: EventReplay
    ) -> None:
        self._auth = auth
        self._deliveries = deliveries
        self._replay = replay

    def _tenant(self, context: Any, requested: str) -> str | None:
        return scoped_tenant(self._auth.authenticate(context, Role.TENANT), requested)

    @unary
    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: Any
    ) -> pb.ListDeliveriesResponse:
        principal = self._auth.authenticate(context, Role.TENANT)
        status = convert.enum_from_proto(convert.DELIVERY_STATUS, request.status, "status")
        page = await self._deliveries.list(
            required_tenant(principal, request.tenant_id),
            subscription_id=request.subscription_id,
            status=status if isinstance(status, DeliveryStatus) else None,
            event_id=request.event_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListDeliveriesResponse(
            deliveries=[convert.delivery(d) for d in page.items],
            next_page_token=page.next_page_token,
        )

    @unary
    async def GetDelivery(
        self, request: pb.GetDeliveryRequest, context: Any
    ) -> pb.GetDeliveryResponse:
        found = await self._deliveries.get(request.id, self._tenant(context, request.tenant_id))
        return pb.GetDeliveryResponse(delivery=convert.delivery(found))

    @unary
    async def RetryDelivery(
        self, request: pb.RetryDeliveryRequest, context: Any
    ) -> pb.RetryDeliveryResponse:
        found = await self._deliveries.retry(request.id, self._tenant(context, request.tenant_id))
        return pb.RetryDeliveryResponse(delivery=convert.delivery(found))

    @unary
    async def RecoverFailedDeliveries(
        self, request: pb.RecoverFailedDeliveriesRequest, context: Any
    ) -> pb.RecoverFailedDeliveriesResponse:
        if not request.HasField("since"):
            raise InvalidArgument("since", "is required")
        count = await self._deliveries.recover(
            request.subscription_id,
            self._tenant(context, request.tenant_id),
            convert.from_timestamp(request.since, "since"),
        )
        return pb.RecoverFailedDeliveriesResponse(recovered_count=count)

    @unary
    async def ReplayEvents(
        self, request: pb.ReplayEventsRequest, context: Any
    ) -> pb.ReplayEventsResponse:
        window = ReplayWindow(
            since=(
                convert.from_timestamp(request.since, "since")
                if request.HasField("since")
                else None
            ),
            until=(
                convert.from_timestamp(request.until, "until")
                if request.HasField("until")
                else None
            ),
            event_patterns=tuple(request.event_patterns),
        )
        replayed = await self._replay.replay(
            request.subscription_id, self._tenant(context, request.tenant_id), window
        )
        return pb.ReplayEventsResponse(
            queued=replayed.queued,
            has_more=replayed.has_more,
            next_since=convert.timestamp(replayed.next_since),
        )
