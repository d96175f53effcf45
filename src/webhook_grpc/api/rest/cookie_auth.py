"""The portal's credential on the REST API: a session cookie, with a CSRF token on changes.

A request with an `Authorization` header is a bearer-token call and its cookies are ignored.
Otherwise a portal session cookie makes the call act as a tenant token of the session's tenant
(the servicers apply the same checks to both). Browsers send cookies on their own, so every
method but GET and HEAD must also carry the session's CSRF token in `X-CSRF-Token`, which only
the portal's own pages can read (SameSite=Strict cookie on this origin)."""

from __future__ import annotations

import grpc
from aiohttp import web

from webhook_grpc.domain import portal_sessions as rules
from webhook_grpc.domain.access import Principal
from webhook_grpc.services.portal_sessions import PortalSessionService

from .status import rest_error

SESSION_COOKIE = "wg_portal_session"
CSRF_COOKIE = "wg_portal_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD"})


class CookieAuth:
    def __init__(self, sessions: PortalSessionService) -> None:
        self._sessions = sessions

    async def principal(self, request: web.Request) -> Principal | None:
        """The session's tenant principal; None when the request is not a cookie call.
        RestError 401 for a dead session, 403 for a change without its CSRF token."""
        if request.headers.get("Authorization") is not None:
            return None
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        principal = await self._sessions.principal(token)
        if principal is None:
            raise rest_error(
                grpc.StatusCode.UNAUTHENTICATED,
                "the portal session has expired or is not valid: ask for a new portal link",
            )
        if request.method not in _SAFE_METHODS and not rules.csrf_matches(
            token, request.headers.get(CSRF_HEADER, "")
        ):
            raise rest_error(
                grpc.StatusCode.PERMISSION_DENIED,
                f"a change made with the portal session needs its {CSRF_HEADER} header",
            )
        return principal
