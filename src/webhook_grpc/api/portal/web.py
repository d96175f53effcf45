"""The portal on the HTTP listener: the one-time login, the static pages, the security headers.

The pages are static files shipped in this package; everything they show comes from the REST
API (§9), called with the session cookie set here."""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import Final

from aiohttp import web

from webhook_grpc.api.rest.cookie_auth import CSRF_COOKIE, SESSION_COOKIE, CookieAuth
from webhook_grpc.domain.clock import Clock
from webhook_grpc.domain.portal_sessions import UNKNOWN_LINK, LinkRefused
from webhook_grpc.services.portal_sessions import PortalSession, PortalSessionService

from .servicer import LOGIN_PATH

LOGOUT_PATH: Final = "/portal/logout"

STATIC = Path(__file__).with_name("static")
ASSETS_PATH: Final = "/portal/assets/"
# No inline script or style, nothing from another origin, never framed (clickjacking).
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def install(
    app: web.Application, sessions: PortalSessionService, cookie_auth: CookieAuth, clock: Clock
) -> None:
    """Add the portal's routes to the listener's application (before it starts)."""
    pages = _PortalPages(sessions, cookie_auth, clock)
    app.router.add_get("/portal", pages.to_index)
    app.router.add_get("/portal/", pages.index)
    app.router.add_get(LOGIN_PATH, pages.login_form)
    app.router.add_post(LOGIN_PATH, pages.login)
    app.router.add_post(LOGOUT_PATH, pages.logout)
    app.router.add_static(ASSETS_PATH, STATIC / "assets", append_version=False)
    app.on_response_prepare.append(_add_security_headers)


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == "/portal" or request.path.startswith("/portal/"):
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", "no-store")
    else:
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"


class _PortalPages:
    def __init__(
        self, sessions: PortalSessionService, cookie_auth: CookieAuth, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._cookie_auth = cookie_auth
        self._clock = clock

    async def to_index(self, _: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "/portal/"})

    async def index(self, _: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        """The link's page: a button that uses the link. Opening it uses nothing, so mail
        scanners and link previews that fetch the URL cannot spend the one-time link."""
        token = request.query.get("token", "")
        try:
            await self._sessions.check(token)
        except LinkRefused as refused:
            return _refused_page(refused)
        return _page(
            200,
            "Open the webhook portal",
            f'<form method="post" action="{LOGIN_PATH}">'
            f'<input type="hidden" name="token" value="{html.escape(token)}">'
            "<p>This link opens the webhook portal once.</p>"
            '<button type="submit" autofocus>Open the portal</button></form>',
        )

    async def login(self, request: web.Request) -> web.StreamResponse:
        if not _same_site_form(request):
            return _page(403, "Refused", "<p>The portal link must be opened on this site.</p>")
        form = await request.post()
        token = form.get("token")
        try:
            session = await self._sessions.exchange(token if isinstance(token, str) else "")
        except LinkRefused as refused:
            return _refused_page(refused)
        response = web.Response(status=303, headers={"Location": "/portal/"})
        _set_session_cookies(response, session, secure=request.secure, now=self._clock())
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """End the session (with its CSRF token, like any change) and drop its cookies."""
        if await self._cookie_auth.principal(request) is not None:
            await self._sessions.end(request.cookies[SESSION_COOKIE])
        response = web.Response(status=204)
        for name in (SESSION_COOKIE, CSRF_COOKIE):
            response.del_cookie(name, path="/", samesite="Strict", secure=request.secure)
        return response


def _same_site_form(request: web.Request) -> bool:
    """Whether the login form was posted by this site's own page (a page elsewhere must not
    sign a browser into a portal session of its choosing). Browsers send Sec-Fetch-Site; with
    Referrer-Policy: no-referrer the Origin of a same-site form is "null"."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin", "null")
    return origin == "null" or origin == f"{request.scheme}://{request.host}"


def _set_session_cookies(
    response: web.StreamResponse, session: PortalSession, *, secure: bool, now: datetime
) -> None:
    """Both cookies end with the session; only the CSRF one is readable by the pages, which
    echo it in the X-CSRF-Token header."""
    max_age = max(0, int((session.expires_at - now).total_seconds()))
    expires = session.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT")
    for name, value, httponly in (
        (SESSION_COOKIE, session.token, True),
        (CSRF_COOKIE, session.csrf_token, False),
    ):
        response.set_cookie(
            name,
            value,
            path="/",
            max_age=max_age,
            expires=expires,
            samesite="Strict",
            secure=secure,
            httponly=httponly,
        )


def _refused_page(refused: LinkRefused) -> web.Response:
    status = 404 if refused.reason == UNKNOWN_LINK else 410
    return _page(
        status,
        "Portal link refused",
        f"<p>{html.escape(str(refused).capitalize())}.</p>"
        "<p>Portal links work once and expire: ask for a new one.</p>",
    )


def _page(status: int, title: str, body: str) -> web.Response:
    return web.Response(
        status=status,
        content_type="text/html",
        text=(
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title>"
            f'<link rel="stylesheet" href="{ASSETS_PATH}portal.css"></head>'
            f'<body><main class="narrow"><h1>{html.escape(title)}</h1>{body}</main></body></html>'
        ),
    )
