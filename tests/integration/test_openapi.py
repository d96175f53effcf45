"""The OpenAPI document: valid OpenAPI 3.1, served, and the same routes as the server serves."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from openapi_spec_validator import validate

from tests.support.server import RunningServer

OPENAPI = "/api/v1/openapi.json"


async def _document(server: RunningServer) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.http + OPENAPI) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        document: dict[str, Any] = await response.json()
        return document


async def test_the_served_document_is_valid_openapi_3_1(server: RunningServer) -> None:
    document = await _document(server)
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_every_documented_route_exists_and_every_served_route_is_documented(
    server: RunningServer,
) -> None:
    document = await _document(server)
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert server.app.rest is not None
    served = {
        (route.method, route.resource.canonical)
        for route in server.app.rest.app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        # The portal's pages (SPEC §10) are HTML on the same listener, not the API.
        and not route.resource.canonical.startswith("/portal")
    }
    assert documented == served
    async with aiohttp.ClientSession() as session:
        for method, path in sorted(documented):
            if path.endswith("/stream"):
                continue  # a stream that lasts: tests/integration/test_sse.py
            url = server.http + re.sub(r"\{\w+\}", "sub_unknown", path)
            async with session.request(method, url) as response:
                body = await response.json()
                # Whatever the call's own answer, it is not "no such route or method".
                assert response.status != 405, (method, path, body)
                assert "no route" not in str(body.get("message")), (method, path, body)
