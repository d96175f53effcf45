"""SubscriptionService servicer: unpack, call one service method, pack."""

from __future__ import annotations

from typing import Any

from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as pb
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2_grpc
from webhook_grpc.domain.access import Role
from webhook_grpc.domain.errors import InvalidArgument
from webhook_grpc.domain.models import (
    Ordering,
    PayloadMode,
    SigningAlgorithm,
    Subscription,
    SubscriptionChanges,
    SubscriptionDraft,
    SubscriptionStatus,
)
from webhook_grpc.services.probe import ProbeService
from webhook_grpc.services.subscription_health import SubscriptionHealthService
from webhook_grpc.services.subscriptions import SubscriptionService

from . import convert
from .auth import Authenticator, required_tenant, scoped_tenant
from .errors import unary

UPDATABLE = frozenset(
    {
        "url",
        "event_patterns",
        "description",
        "payload_mode",
        "metadata",
        "filter",
        "headers",
        "ordering",
        "rate_limit_per_second",
    }
)


class SubscriptionServicer(subscriptions_pb2_grpc.SubscriptionServiceServicer):
    def __init__(
        self,
        auth: Authenticator,
        service: SubscriptionService,
        probe: ProbeService,
        health: SubscriptionHealthService,
    ) -> None:
        self._auth = auth
        self._service = service
        self._probe = probe
        self._health = health

    async def _packed(self, subscription: Subscription) -> pb.Subscription:
        health = await self._health.of([subscription])
        return convert.subscription(subscription, health[subscription.id])

    def _tenant(self, context: Any, requested: str) -> str | None:
        return scoped_tenant(self._auth.authenticate(context, Role.TENANT), requested)

    @unary
    async def CreateSubscription(
        self, request: pb.CreateSubscriptionRequest, context: Any
    ) -> pb.CreateSubscriptionResponse:
        principal = self._auth.authenticate(context, Role.TENANT)
        draft = SubscriptionDraft(
            tenant_id=required_tenant(principal, request.tenant_id),
            url=request.url,
            event_patterns=tuple(request.event_patterns),
            description=request.description,
            payload_mode=convert.enum_from_proto(
                convert.PAYLOAD_MODE, request.payload_mode, "payload_mode"
            )
            or PayloadMode.FULL,
            metadata=dict(request.metadata),
            secret=request.secret,
            signing_algorithm=convert.enum_from_proto(
                convert.SIGNING_ALGORITHM, request.signing_algorithm, "signing_algorithm"
            )
            or SigningAlgorithm.HMAC_SHA256,
            filter=request.filter,
            headers=dict(request.headers),
            ordering=convert.enum_from_proto(convert.ORDERING, request.ordering, "ordering")
            or Ordering.UNORDERED,
            rate_limit_per_second=request.rate_limit_per_second,
        )
        created, secret = await self._service.create(draft)
        return pb.CreateSubscriptionResponse(
            subscription=await self._packed(created), secret=secret
        )

    @unary
    async def GetSubscription(
        self, request: pb.GetSubscriptionRequest, context: Any
    ) -> pb.GetSubscriptionResponse:
        found = await self._service.get(request.id, self._tenant(context, request.tenant_id))
        return pb.GetSubscriptionResponse(subscription=await self._packed(found))

    @unary
    async def ListSubscriptions(
        self, request: pb.ListSubscriptionsRequest, context: Any
    ) -> pb.ListSubscriptionsResponse:
        principal = self._auth.authenticate(context, Role.TENANT)
        status = convert.enum_from_proto(convert.SUBSCRIPTION_STATUS, request.status, "status")
        page = await self._service.list(
            required_tenant(principal, request.tenant_id),
            request.page_size,
            request.page_token,
            status if isinstance(status, SubscriptionStatus) else None,
        )
        health = await self._health.of(page.items)
        return pb.ListSubscriptionsResponse(
            subscriptions=[convert.subscription(s, health[s.id]) for s in page.items],
            next_page_token=page.next_page_token,
        )

    @unary
    async def UpdateSubscription(
        self, request: pb.UpdateSubscriptionRequest, context: Any
    ) -> pb.UpdateSubscriptionResponse:
        given = request.subscription
        tenant = self._tenant(context, given.tenant_id)
        paths = set(request.update_mask.paths)
        if not paths:
            raise InvalidArgument("update_mask", f"name the fields to update: {sorted(UPDATABLE)}")
        unknown = paths - UPDATABLE
        if unknown:
            raise InvalidArgument(
                "update_mask", f"cannot update {sorted(unknown)}; updatable: {sorted(UPDATABLE)}"
            )
        changes = SubscriptionChanges(
            url=given.url if "url" in paths else None,
            event_patterns=tuple(given.event_patterns) if "event_patterns" in paths else None,
            description=given.description if "description" in paths else None,
            payload_mode=(
                convert.enum_from_proto(
                    convert.PAYLOAD_MODE,
                    given.payload_mode,
                    "subscription.payload_mode",
                    optional=False,
                )
                if "payload_mode" in paths
                else None
            ),
            metadata=dict(given.metadata) if "metadata" in paths else None,
            filter=given.filter if "filter" in paths else None,
            headers=dict(given.headers) if "headers" in paths else None,
            ordering=(
                convert.enum_from_proto(convert.ORDERING, given.ordering, "subscription.ordering")
                or Ordering.UNORDERED
                if "ordering" in paths
                else None
            ),
            rate_limit_per_second=(
                given.rate_limit_per_second if "rate_limit_per_second" in paths else None
            ),
        )
        updated = await self._service.update(given.id, tenant, changes)
        return pb.UpdateSubscriptionResponse(subscription=await self._packed(updated))

    @unary
    async def DeleteSubscription(
        self, request: pb.DeleteSubscriptionRequest, context: Any
    ) -> pb.DeleteSubscriptionResponse:
        await self._service.delete(request.id, self._tenant(context, request.tenant_id))
        return pb.DeleteSubscriptionResponse()

    @unary
    async def ActivateSubscription(
        self, request: pb.ActivateSubscriptionRequest, context: Any
    ) -> pb.ActivateSubscriptionResponse:
        found = await self._service.activate(request.id, self._tenant(context, request.tenant_id))
        return pb.ActivateSubscriptionResponse(subscription=await self._packed(found))

    @unary
    async def DisableSubscription(
        self, request: pb.DisableSubscriptionRequest, context: Any
    ) -> pb.DisableSubscriptionResponse:
        found = await self._service.disable(request.id, self._tenant(context, request.tenant_id))
        return pb.DisableSubscriptionResponse(subscription=await self._packed(found))

    @unary
    async def RotateSubscriptionSecret(
        self, request: pb.RotateSubscriptionSecretRequest, context: Any
    ) -> pb.RotateSubscriptionSecretResponse:
        grace = (
            convert.from_duration(request.grace_period, "grace_period")
            if request.HasField("grace_period")
            else None
        )
        found, secret = await self._service.rotate_secret(
            request.id, self._tenant(context, request.tenant_id), request.secret, grace
        )
        return pb.RotateSubscriptionSecretResponse(
            subscription=await self._packed(found), secret=secret
        )

    @unary
    async def SendTestEvent(
        self, request: pb.SendTestEventRequest, context: Any
    ) -> pb.SendTestEventResponse:
        event, delivery_id = await self._probe.send(
            request.id, self._tenant(context, request.tenant_id)
        )
        return pb.SendTestEventResponse(event=convert.event(event), delivery_id=delivery_id)
