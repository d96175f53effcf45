"""A web page in a developer's browser attacking the HTTP listener (issue found by the README
audit): a cross-site `text/plain` POST (no CORS preflight) and DNS rebinding (the attacker's
name resolving to 127.0.0.1), against the open server of `make run` and a server with tokens.
Requests are sent as the browser would send them, headers included."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.conftest import ServerFactory
from tests.support.http import Http
from tests.support.tokens import ADMIN_TOKEN, TOKENS

API = "/api/v1/webhooks"
EVENT = {"tenant_id": "acme", "type": "product.created", "entity_id": "p1", "data": {"id": "p1"}}
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def _feed(http: Http) -> list[object]:
    page = await http.get(f"{API}/events", params={"tenant_id": "acme"})
    assert page.status == 200, page.text
    return list(page.json["events"])


async def test_another_sites_page_cannot_change_the_open_server(
    make_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await make_server()  # open, like `make run`
    http = Http(server.http, session, None)
    evil = {**TEXT, "Origin": "https://evil.example"}
    for headers in (
        evil,
        {**evil, "Sec-Fetch-Site": "cross-site"},
        {**TEXT, "Sec-Fetch-Site": "cross-site"},  # a sandboxed frame: Origin "null"
        {**TEXT, "Sec-Fetch-Site": "same-site"},
    ):
        refused = await http.post(f"{API}/events", EVENT, headers=headers)
        assert refused.status == 403, (headers, refused.text)
        assert refused.json["code"] == 7
        portal = await http.post(f"{API}/portal-sessions", {"tenant_id": "acme"}, headers=headers)
        assert portal.status == 403, portal.text
    assert await _feed(http) == []

    # curl and the SDKs send neither header; the portal's own pages are same-origin.
    assert (await http.post(f"{API}/events", EVENT)).status == 201
    own = {"Origin": server.http, "Sec-Fetch-Site": "same-origin"}
    assert (await http.post(f"{API}/events", EVENT, headers=own)).status == 201
    same_page = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    assert (await http.post(f"{API}/events", EVENT, headers=same_page)).status == 201
    # Behind a TLS proxy the browser's https Origin differs from what the listener sees; its
    # Sec-Fetch-Site still says same-origin.
    proxied = {"Origin": "https://webhooks.example.com", "Sec-Fetch-Site": "same-origin"}
    assert (await http.post(f"{API}/events", EVENT, headers=proxied)).status == 201
    assert len(await _feed(http)) == 4

    # Following a link from another site (a portal link in a web mail) only reads.
    link = await http.post(f"{API}/portal-sessions", {"tenant_id": "acme"})
    navigation = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    async with session.get(link.json["url"], headers=navigation) as login_page:
        assert login_page.status == 200
        assert "Open the portal" in await login_page.text()


async def test_a_rebound_name_cannot_read_or_change_the_open_server(
    make_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await make_server()
    http = Http(server.http, session, None)
    port = server.http.rsplit(":", 1)[1]
    rebound = {"Host": f"evil.example:{port}"}
    read = await http.get(f"{API}/subscriptions", params={"tenant_id": "acme"}, headers=rebound)
    assert read.status == 403, read.text
    assert "DNS rebinding" in read.json["message"]
    assert (await http.post(f"{API}/events", EVENT, headers=rebound)).status == 403
    assert await _feed(http) == []
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "app.localhost"):
        served = await http.get(
            f"{API}/subscriptions", params={"tenant_id": "acme"}, headers={"Host": host}
        )
        assert served.status == 200, (host, served.text)


async def test_a_server_with_tokens_serves_any_host_but_no_other_site(
    make_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await make_server(tokens=TOKENS)
    admin = Http(server.http, session, ADMIN_TOKEN)
    behind_a_proxy = {"Host": "webhooks.example.com"}
    assert (await admin.post(f"{API}/events", EVENT, headers=behind_a_proxy)).status == 201
    cross = {**TEXT, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert (await admin.post(f"{API}/events", EVENT, headers=cross)).status == 403
    assert len(await _feed(admin)) == 1
