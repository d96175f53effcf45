"""Bearer-token authentication and the tenant scoping every RPC applies."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from webhook_grpc.config import TokenConfig
from webhook_grpc.domain.access import Principal, Role, check_tenant_id
from webhook_grpc.domain.errors import InvalidArgument, PermissionDenied, Unauthenticated

OPEN_PRINCIPAL = Principal(role=Role.ADMIN, tenant=None)


class Authenticator:
    """Maps `authorization: Bearer <token>` metadata to a principal.

    Tokens are configured as sha256 hashes; with none configured the server is open (loopback
    only, enforced at start-up) and every caller is an admin."""

    def __init__(self, tokens: Iterable[TokenConfig]) -> None:
        self._by_hash = {token.sha256: Principal(token.role, token.tenant) for token in tokens}

    @property
    def is_open(self) -> bool:
        return not self._by_hash

    def authenticate(self, context: Any, *roles: Role) -> Principal:
        """The caller's principal, if its role is one of `roles` (admin always is)."""
        principal = self._principal(context)
        if principal.role is not Role.ADMIN and principal.role not in roles:
            raise PermissionDenied(f"the {principal.role.value} role may not call this method")
        return principal

    def _principal(self, context: Any) -> Principal:
        # A portal session (REST with its cookie, api/rest/cookie_auth.py) is already
        # authenticated, as a tenant; it stays one even on an open server.
        session = getattr(context, "session_principal", None)
        if isinstance(session, Principal):
            return session
        if self.is_open:
            return OPEN_PRINCIPAL
        header = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value if isinstance(value, str) else ""
                break
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        principal = self._by_hash.get(digest)
        if principal is None:
            raise Unauthenticated("unknown bearer token")
        return principal


def scoped_tenant(principal: Principal, requested: str, field: str = "tenant_id") -> str | None:
    """The tenant a request acts on: a tenant token's own (naming another is denied);
    for admins and publishers the requested one, or None (any tenant) when empty. A
    requested tenant id of the wrong form is INVALID_ARGUMENT naming `field`."""
    if requested:
        check_tenant_id(requested, field)
    if principal.role is Role.TENANT:
        if requested and requested != principal.tenant:
            raise PermissionDenied(f"this token may not act for tenant {requested!r}")
        return principal.tenant
    return requested or None


def required_tenant(principal: Principal, requested: str, field: str = "tenant_id") -> str:
    tenant = scoped_tenant(principal, requested, field)
    if not tenant:
        raise InvalidArgument(field, "is required")
    return tenant
