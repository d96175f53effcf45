"""Portal sessions (SPEC §10) with a plain HTTP client: a one-time link becomes a session cookie
bound to one tenant, which acts on the REST API as that tenant's token, with a CSRF token on
every change; used and expired links, expired sessions and other tenants are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from tests.conftest import ServerFactory
from tests.support.clock import MovableClock
from tests.support.http import Http
from tests.support.portal import (
    API,
    CSRF_COOKIE,
    SESSION_COOKIE,
    fetch,
    open_link,
    portal_link,
)
from tests.support.server import RunningServer
from tests.support.tokens import ACME_TOKEN, ADMIN_TOKEN, GLOBEX_TOKEN, PUBLISHER_TOKEN, TOKENS

HOOK = {"url": "https://example.com/hook", "event_patterns": ["*"]}


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def secured(make_server: ServerFactory, clock: MovableClock) -> RunningServer:
    return await make_server(tokens=TOKENS, clock=clock)


def as_token(server: RunningServer, client: aiohttp.ClientSession, token: str) -> Http:
    return Http(server.http, client, token)


async def _create(http: Http, **fields: object) -> str:
    reply = await http.post(f"{API}/subscriptions", {**HOOK, **fields})
    assert reply.status == 201, reply.text
    return str(reply.json["subscription"]["id"])


async def test_a_link_opens_a_tenant_session_once(
    secured: RunningServer, client: aiohttp.ClientSession
) -> None:
    acme_id = await _create(as_token(secured, client, ACME_TOKEN))
    globex_id = await _create(as_token(secured, client, GLOBEX_TOKEN))
    url = await portal_link(as_token(secured, client, ADMIN_TOKEN), "acme")
    assert url.startswith(f"{secured.http}/portal/login?token=")

    # Opening the link only shows its button: a mail scanner fetching it spends nothing.
    page, _ = await fetch(client, "GET", url)
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    session = await open_link(client, url)

    cookie = session.cookies[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert not cookie["secure"]  # plain http on loopback; set when served over https
    assert 3500 <= int(cookie["max-age"]) <= 3600  # the default 1 h session
    assert session.cookies[CSRF_COOKIE]["samesite"] == "Strict"
    assert not session.cookies[CSRF_COOKIE]["httponly"]  # the pages echo it in a header

    listed = await session.call("GET", f"{API}/subscriptions")
    assert listed.status == 200, listed.text
    assert [s["id"] for s in listed.json["subscriptions"]] == [acme_id]
    assert (await session.call("GET", f"{API}/subscriptions/{globex_id}")).status == 404

    for method in ("GET", "POST"):
        reused, cookies = await fetch(
            client,
            method,
            url if method == "GET" else f"{secured.http}/portal/login",
            data=None if method == "GET" else {"token": url.rpartition("=")[2]},
        )
        assert reused.status == 410, reused.text
        assert "already used" in reused.text
        assert SESSION_COOKIE not in cookies


async def test_an_unknown_link_is_refused(
    secured: RunningServer, client: aiohttp.ClientSession
) -> None:
    page, _ = await fetch(client, "GET", f"{secured.http}/portal/login?token=made-up")
    assert page.status == 404
    assert "not valid" in page.text
    posted, cookies = await fetch(
        client, "POST", f"{secured.http}/portal/login", data={"token": "made-up"}
    )
    assert posted.status == 404
    assert not cookies


async def test_an_expired_link_is_refused(
    secured: RunningServer, client: aiohttp.ClientSession, clock: MovableClock
) -> None:
    url = await portal_link(as_token(secured, client, ADMIN_TOKEN), "acme", ttl="0.2s")
    clock.advance(timedelta(milliseconds=200))
    page, _ = await fetch(client, "GET", url)
    assert page.status == 410
    assert "expired" in page.text
    posted, cookies = await fetch(
        client, "POST", f"{secured.http}/portal/login", data={"token": url.rpartition("=")[2]}
    )
    assert posted.status == 410
    assert not cookies


async def test_an_expired_session_is_refused(
    secured: RunningServer, client: aiohttp.ClientSession, clock: MovableClock
) -> None:
    url = await portal_link(as_token(secured, client, ADMIN_TOKEN), "acme", ttl="0.2s")
    session = await open_link(client, url)
    assert (await session.call("GET", f"{API}/subscriptions")).status == 200
    clock.advance(timedelta(milliseconds=200))
    expired = await session.call("GET", f"{API}/subscriptions")
    assert expired.status == 401
    assert expired.json["code"] == 16
    assert "expired" in expired.json["message"]


async def test_changes_need_the_sessions_csrf_token(
    secured: RunningServer, client: aiohttp.ClientSession
) -> None:
    session = await open_link(
        client, await portal_link(as_token(secured, client, ADMIN_TOKEN), "acme")
    )
    for csrf in (None, "", "0" * 64):
        refused = await session.call("POST", f"{API}/subscriptions", HOOK, csrf=csrf)
        assert refused.status == 403, refused.text
        assert "X-CSRF-Token" in refused.json["message"]
    created = await session.call("POST", f"{API}/subscriptions", HOOK, csrf=session.csrf)
    assert created.status == 201, created.text
    path = f"{API}/subscriptions/{created.json['subscription']['id']}"
    assert (await session.call("DELETE", path)).status == 403
    assert (await session.call("POST", f"{path}/disable")).status == 403
    assert (await session.call("GET", path)).status == 200
    assert (await session.call("DELETE", path, csrf=session.csrf)).status == 204

    # Another session's CSRF token is no good either.
    other = await open_link(
        client, await portal_link(as_token(secured, client, ADMIN_TOKEN), "acme")
    )
    assert (await session.call("POST", f"{API}/subscriptions", HOOK, csrf=other.csrf)).status == 403


async def test_a_session_acts_for_its_tenant_only(
    secured: RunningServer, client: aiohttp.ClientSession
) -> None:
    globex_id = await _create(as_token(secured, client, GLOBEX_TOKEN))
    session = await open_link(
        client, await portal_link(as_token(secured, client, ADMIN_TOKEN), "acme")
    )
    csrf = session.csrf
    assert (await session.call("GET", f"{API}/subscriptions/{globex_id}")).status == 404
    assert (
        await session.call("POST", f"{API}/subscriptions/{globex_id}/disable", csrf=csrf)
    ).status == 404
    named = await session.call("GET", f"{API}/subscriptions", params={"tenant_id": "globex"})
    assert named.status == 403
    created = await session.call(
        "POST", f"{API}/subscriptions", {**HOOK, "tenant_id": "globex"}, csrf=csrf
    )
    assert created.status == 403
    # A session is a tenant, not an admin: it cannot publish or open portals.
    assert (
        await session.call("POST", f"{API}/portal-sessions", {"tenant_id": "acme"}, csrf=csrf)
    ).status == 403


async def test_a_bearer_token_wins_over_a_session_cookie(
    secured: RunningServer, client: aiohttp.ClientSession
) -> None:
    globex_id = await _create(as_token(secured, client, GLOBEX_TOKEN))
    session = await open_link(
        client, await portal_link(as_token(secured, client, ADMIN_TOKEN), "acme")
    )
    reply, _ = await fetch(
        client,
        "GET",
        f"{secured.http}{API}/subscriptions/{globex_id}",
        headers={
            "Cookie": f"{SESSION_COOKIE}={session.cookies[SESSION_COOKIE].value}",
            "Authorization": f"Bearer {GLOBEX_TOKEN}",
        },
    )
    assert reply.status == 200


async def test_who_may_create_portal_sessions(
    secured: RunningServer, client: aiohttp.ClientSession
) -> None:
    path = f"{API}/portal-sessions"
    publisher = as_token(secured, client, PUBLISHER_TOKEN)
    assert (await publisher.post(path, {"tenant_id": "acme"})).status == 200
    missing = await publisher.post(path, {})
    assert missing.status == 400
    assert missing.violated_fields() == ["tenant_id"]
    assert (
        await as_token(secured, client, ACME_TOKEN).post(path, {"tenant_id": "acme"})
    ).status == 403
    assert (await Http(secured.http, client, None).post(path, {"tenant_id": "acme"})).status == 401
    for ttl in ("0s", "-1s", "86401s"):
        bad = await publisher.post(path, {"tenant_id": "acme", "ttl": ttl})
        assert bad.status == 400, ttl
        assert bad.violated_fields() == ["ttl"]


async def test_on_an_open_server_a_session_is_still_one_tenant(
    make_server: ServerFactory, client: aiohttp.ClientSession
) -> None:
    server = await make_server()
    open_api = Http(server.http, client, None)
    globex_id = await _create(open_api, tenant_id="globex")
    session = await open_link(client, await portal_link(open_api, "acme"))
    assert (await session.call("GET", f"{API}/subscriptions/{globex_id}")).status == 404
    named = await session.call("GET", f"{API}/subscriptions", params={"tenant_id": "globex"})
    assert named.status == 403


async def test_portal_responses_carry_a_strict_content_security_policy(
    secured: RunningServer, client: aiohttp.ClientSession
) -> None:
    url = await portal_link(as_token(secured, client, ADMIN_TOKEN), "acme")
    for target in (url, f"{secured.http}/portal/", f"{secured.http}/portal/assets/app.js"):
        reply, _ = await fetch(client, "GET", target)
        assert reply.status == 200, target
        policy = reply.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Referrer-Policy"] == "no-referrer"
    # Another site's page cannot post the login form (login CSRF).
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        login, cookies = await fetch(
            client,
            "POST",
            f"{secured.http}/portal/login",
            data={"token": url.rpartition("=")[2]},
            headers=headers,
        )
        assert login.status == 403, headers
        assert not cookies


async def test_signing_out_ends_the_session(
    secured: RunningServer, client: aiohttp.ClientSession
) -> None:
    session = await open_link(
        client, await portal_link(as_token(secured, client, ADMIN_TOKEN), "acme")
    )
    assert (await session.call("POST", "/portal/logout")).status == 403  # no CSRF token
    assert (await session.call("GET", f"{API}/subscriptions")).status == 200
    reply, cookies = await fetch(
        client,
        "POST",
        f"{secured.http}/portal/logout",
        headers={
            "Cookie": f"{SESSION_COOKIE}={session.cookies[SESSION_COOKIE].value}",
            "X-CSRF-Token": session.csrf,
        },
    )
    assert reply.status == 204
    assert cookies[SESSION_COOKIE].value == "" and cookies[SESSION_COOKIE]["max-age"] == "0"
    assert (await session.call("GET", f"{API}/subscriptions")).status == 401
