"""`webhook-grpc portal-link` end to end: a subprocess prints a link that opens the portal."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ServerFactory
from tests.integration.test_cli import run
from tests.support.portal import API, open_link
from tests.support.tokens import ACME_TOKEN, ADMIN_TOKEN, TOKENS


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the command does not depend on the storage engine."""
    return f"sqlite:///{tmp_path / 'webhooks.db'}"


async def test_portal_link_prints_a_link_that_opens_the_tenants_portal(
    make_server: ServerFactory,
) -> None:
    server = await make_server(tokens=TOKENS)
    target = ("--target", server.target)
    printed = await run("portal-link", "--tenant", "acme", "--token", ADMIN_TOKEN, *target)
    assert printed.code == 0, printed.stderr
    url = printed.stdout.strip()
    assert url.startswith(f"{server.http}/portal/login?token=")
    async with aiohttp.ClientSession() as client:
        session = await open_link(client, url)
        listed = await session.call("GET", f"{API}/subscriptions")
        assert listed.status == 200, listed.text

    timed = await run(
        "portal-link", "--tenant", "acme", "--ttl", "10m", "--json", "--token", ADMIN_TOKEN, *target
    )
    assert timed.code == 0, timed.stderr
    assert set(timed.json()) == {"url", "expires_at"}

    no_tenant = await run("portal-link", "--token", ADMIN_TOKEN, *target)
    assert no_tenant.code == 2 and "--tenant is required" in no_tenant.stderr
    bad_ttl = await run("portal-link", "--tenant", "acme", "--ttl", "soon", *target)
    assert bad_ttl.code == 2 and "--ttl" in bad_ttl.stderr
    as_tenant = await run("portal-link", "--tenant", "acme", "--token", ACME_TOKEN, *target)
    assert as_tenant.code == 1 and "permission denied" in as_tenant.stderr
