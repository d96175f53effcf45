"""PortalService servicer: one-time portal links for a tenant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from webhook_grpc._gen.webhooks.v1 import portal_pb2 as pb
from webhook_grpc._gen.webhooks.v1 import portal_pb2_grpc
from webhook_grpc.api import convert
from webhook_grpc.api.auth import Authenticator, required_tenant
from webhook_grpc.api.errors import unary
from webhook_grpc.domain.access import Role
from webhook_grpc.domain.errors import FailedPrecondition
from webhook_grpc.services.portal_sessions import PortalSessionService

LOGIN_PATH = "/portal/login"

# The portal's base URL (scheme, host and port of the HTTP listener), or None without one.
BaseUrl = Callable[[], str | None]


class PortalServicer(portal_pb2_grpc.PortalServiceServicer):
    def __init__(
        self, auth: Authenticator, sessions: PortalSessionService, base_url: BaseUrl
    ) -> None:
        self._auth = auth
        self._sessions = sessions
        self._base_url = base_url

    @unary
    async def CreatePortalSession(
        self, request: pb.CreatePortalSessionRequest, context: Any
    ) -> pb.CreatePortalSessionResponse:
        # Admins, and publishers (internal services) acting for a tenant: never a tenant itself.
        principal = self._auth.authenticate(context, Role.PUBLISHER)
        tenant = required_tenant(principal, request.tenant_id)
        base = self._base_url()
        if base is None:
            raise FailedPrecondition("the portal needs the HTTP listener: set http_listen")
        ttl = convert.from_duration(request.ttl, "ttl") if request.HasField("ttl") else None
        link = await self._sessions.create_link(tenant, ttl)
        return pb.CreatePortalSessionResponse(
            url=f"{base}{LOGIN_PATH}?{urlencode({'token': link.token})}",
            expires_at=convert.timestamp(link.expires_at),
        )
