"""The portal's session as a plain HTTP client sees it: ask for a link, open it, keep the cookies.

Cookies are carried by hand (aiohttp's jar refuses cookies from IP addresses), exactly as the
server set them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from http.cookies import Morsel, SimpleCookie
from typing import Any

import aiohttp

from tests.support.http import Http, Reply

API = "/api/v1/webhooks"
SESSION_COOKIE = "wg_portal_session"
CSRF_COOKIE = "wg_portal_csrf"
_TOKEN_FIELD = re.compile(r'name="token" value="([^"]+)"')


async def portal_link(admin: Http, tenant: str, ttl: str | None = None) -> str:
    body: dict[str, Any] = {"tenant_id": tenant}
    if ttl is not None:
        body["ttl"] = ttl
    reply = await admin.post(f"{API}/portal-sessions", body)
    assert reply.status == 200, reply.text
    return str(reply.json["url"])


async def fetch(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[Reply, SimpleCookie]:
    async with session.request(method, url, allow_redirects=False, **kwargs) as response:
        cookies: SimpleCookie = SimpleCookie()
        for header in response.headers.getall("Set-Cookie", []):
            cookies.load(header)
        reply = Reply(response.status, dict(response.headers), await response.text())
        return reply, cookies


@dataclass
class PortalSession:
    """A browser's view of a portal session: its cookies, sent on every REST call."""

    base: str
    client: aiohttp.ClientSession
    cookies: dict[str, Morsel[str]]

    @property
    def csrf(self) -> str:
        return self.cookies[CSRF_COOKIE].value

    async def call(
        self, method: str, path: str, body: Any = None, *, csrf: str | None = None, **kwargs: Any
    ) -> Reply:
        headers = {"Cookie": f"{SESSION_COOKIE}={self.cookies[SESSION_COOKIE].value}"}
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        reply, _ = await fetch(
            self.client, method, self.base + path, json=body, headers=headers, **kwargs
        )
        return reply


async def open_link(client: aiohttp.ClientSession, url: str) -> PortalSession:
    """Open a portal link as a browser does: its page, then its button."""
    page, _ = await fetch(client, "GET", url)
    assert page.status == 200, page.text
    token = _TOKEN_FIELD.search(page.text)
    assert token is not None, page.text
    base = url.split("/portal/", 1)[0]
    reply, cookies = await fetch(
        client, "POST", f"{base}/portal/login", data={"token": token.group(1)}
    )
    assert reply.status == 303, reply.text
    assert reply.headers["Location"] == "/portal/"
    return PortalSession(base, client, dict(cookies))
