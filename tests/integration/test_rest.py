"""The REST/JSON API (SPEC §9) against a real server: every route, its statuses and bodies,
tenancy, errors as google.rpc.Status JSON; one API with gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.conftest import ServerFactory
from tests.support.factories import publish, subscribe
from tests.support.fault_proxy import FaultProxy, Outage
from tests.support.http import Http
from tests.support.processes import LoggingProcess, settings_env
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, start_server
from tests.support.tokens import (
    ACME,
    ACME_TOKEN,
    ADMIN_TOKEN,
    GLOBEX_TOKEN,
    PUBLISHER_TOKEN,
    TOKENS,
)
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2
from webhook_grpc.app import App, StartupError
from webhook_grpc.config import load_settings

API = "/api/v1/webhooks"


@pytest.fixture
async def secured(make_server: ServerFactory) -> RunningServer:
    return await make_server(tokens=TOKENS)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def acme(secured: RunningServer, session: aiohttp.ClientSession) -> Http:
    return Http(secured.http, session, ACME_TOKEN)


async def _create(http: Http, url: str = "https://example.com/hook", **fields: object) -> str:
    reply = await http.post(f"{API}/subscriptions", {"url": url, "event_patterns": ["*"], **fields})
    assert reply.status == 201, reply.text
    return str(reply.json["subscription"]["id"])


async def test_the_subscription_lifecycle_of_the_quick_start(acme: Http) -> None:
    created = await acme.post(
        f"{API}/subscriptions",
        {"url": "https://example.com/hook", "event_patterns": ["product.*"], "description": "a"},
    )
    assert created.status == 201, created.text
    assert created.headers["Content-Type"].startswith("application/json")
    subscription, secret = created.json["subscription"], created.json["secret"]
    assert secret.startswith("whsec_")
    assert subscription["tenant_id"] == "acme"
    assert subscription["status"] == "SUBSCRIPTION_STATUS_ACTIVE"
    path = f"{API}/subscriptions/{subscription['id']}"

    listed = await acme.get(f"{API}/subscriptions")
    assert listed.status == 200
    assert [s["id"] for s in listed.json["subscriptions"]] == [subscription["id"]]
    assert "secret" not in listed.json["subscriptions"][0]

    fetched = await acme.get(path)
    assert fetched.status == 200
    assert fetched.json["subscription"] == subscription

    # No update_mask: the body's keys are the fields replaced.
    patched = await acme.request("PATCH", path, {"description": "b", "eventPatterns": ["*"]})
    assert patched.status == 200, patched.text
    assert patched.json["subscription"]["description"] == "b"
    assert patched.json["subscription"]["event_patterns"] == ["*"]
    assert patched.json["subscription"]["url"] == "https://example.com/hook"

    disabled = await acme.post(f"{path}/disable")
    assert disabled.status == 200
    assert disabled.json["subscription"]["status"] == "SUBSCRIPTION_STATUS_DISABLED"
    assert disabled.json["subscription"]["disabled_reason"] == "DISABLED_REASON_MANUAL"
    activated = await acme.post(f"{path}/activate")
    assert activated.status == 200
    assert activated.json["subscription"]["status"] == "SUBSCRIPTION_STATUS_ACTIVE"

    rotated = await acme.post(f"{path}/rotate-secret", {"grace_period": "1.5s"})
    assert rotated.status == 200, rotated.text
    assert rotated.json["secret"].startswith("whsec_") and rotated.json["secret"] != secret
    assert rotated.json["subscription"]["previous_secret_expires_at"]

    deleted = await acme.request("DELETE", path)
    assert deleted.status == 204
    assert deleted.text == ""
    gone = await acme.get(path)
    assert gone.status == 404
    assert gone.json["code"] == 5
    assert subscription["id"] in gone.json["message"]


async def test_send_test_event(acme: Http, receiver: Receiver) -> None:
    subscription_id = await _create(acme, receiver.url())
    sent = await acme.post(f"{API}/subscriptions/{subscription_id}/test")
    assert sent.status == 200, sent.text
    assert sent.json["event"]["type"] == "webhook.test"
    assert sent.json["delivery_id"]
    await receiver.wait_count(1)


async def test_requests_take_snake_case_and_lower_camel_case(acme: Http) -> None:
    reply = await acme.post(
        f"{API}/subscriptions",
        {
            "url": "https://example.com/a",
            "eventPatterns": ["*"],
            "payloadMode": "PAYLOAD_MODE_THIN",
        },
    )
    assert reply.status == 201, reply.text
    assert reply.json["subscription"]["payload_mode"] == "PAYLOAD_MODE_THIN"
    listed = await acme.get(f"{API}/subscriptions", params={"pageSize": "1"})
    assert listed.status == 200, listed.text
    listed = await acme.get(f"{API}/subscriptions", params={"page_size": "1"})
    assert listed.status == 200, listed.text


async def test_missing_or_unknown_token_is_401(secured: RunningServer, acme: Http) -> None:
    for token in (None, "not-a-token"):
        reply = await acme.as_token(token).get(f"{API}/subscriptions")
        assert reply.status == 401, reply.text
        assert reply.json["code"] == 16
    malformed = await acme.as_token(None).get(
        f"{API}/subscriptions", headers={"Authorization": "Basic YWNtZTphY21l"}
    )
    assert malformed.status == 401


async def test_bad_input_is_400_with_the_status_json(acme: Http) -> None:
    bad_json = await acme.post(f"{API}/subscriptions", raw=b'{"url": ')
    assert bad_json.status == 400
    assert bad_json.json["code"] == 3
    not_an_object = await acme.post(f"{API}/subscriptions", raw=b"[1, 2]")
    assert not_an_object.status == 400
    unknown_field = await acme.post(
        f"{API}/subscriptions", {"url": "https://example.com/a", "colour": "red"}
    )
    assert unknown_field.status == 400
    assert "colour" in unknown_field.json["message"]
    unknown_parameter = await acme.get(f"{API}/subscriptions", params={"colour": "red"})
    assert unknown_parameter.status == 400
    wrong_type = await acme.post(f"{API}/subscriptions", {"url": 5})
    assert wrong_type.status == 400
    bad_enum = await acme.get(f"{API}/subscriptions", params={"status": "SLEEPY"})
    assert bad_enum.status == 400
    # A rule of the service, with the field named in a google.rpc.BadRequest detail.
    refused = await acme.post(
        f"{API}/subscriptions", {"url": "ftp://example.com/a", "event_patterns": ["*"]}
    )
    assert refused.status == 400
    assert refused.violated_fields() == ["url"]
    assert refused.json["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    limited = await acme.get(f"{API}/subscriptions", params={"page_size": "1000"})
    assert limited.status == 400
    assert limited.violated_fields() == ["page_size"]


async def test_a_deeply_nested_body_is_400_not_an_internal_error(acme: Http) -> None:
    # Deeper than Python's recursion limit: the JSON decoder itself gives up.
    deep = b'{"url": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}"
    reply = await acme.post(f"{API}/subscriptions", raw=deep)
    assert reply.status == 400, reply.text
    assert reply.json["code"] == 3
    assert "nested" in reply.json["message"]


async def test_unknown_routes_and_methods_answer_status_json(acme: Http) -> None:
    missing = await acme.get("/api/v1/webhooks/nothing-here")
    assert missing.status == 404
    assert missing.headers["Content-Type"].startswith("application/json")
    assert missing.json["code"] == 5
    wrong_method = await acme.request("PUT", f"{API}/subscriptions")
    assert wrong_method.status == 405
    assert wrong_method.json["code"] == 12


async def test_tenant_isolation(
    secured: RunningServer, session: aiohttp.ClientSession, acme: Http
) -> None:
    globex = Http(secured.http, session, GLOBEX_TOKEN)
    theirs = f"{API}/subscriptions/{await _create(globex)}"
    for method, path in (
        ("GET", theirs),
        ("PATCH", theirs),
        ("DELETE", theirs),
        ("POST", f"{theirs}/activate"),
        ("POST", f"{theirs}/disable"),
        ("POST", f"{theirs}/rotate-secret"),
        ("POST", f"{theirs}/test"),
    ):
        body = {"description": "mine now"} if method == "PATCH" else None
        reply = await acme.request(method, path, body)
        assert reply.status == 404, (method, path, reply.text)
    listed = await acme.get(f"{API}/subscriptions", params={"tenant_id": "globex"})
    assert listed.status == 403
    assert listed.json["code"] == 7
    named = await acme.post(
        f"{API}/subscriptions",
        {"tenant_id": "globex", "url": "https://example.com/a", "event_patterns": ["*"]},
    )
    assert named.status == 403
    publisher = await acme.as_token(PUBLISHER_TOKEN).get(
        f"{API}/subscriptions", params={"tenant_id": "acme"}
    )
    assert publisher.status == 403
    # An admin names the tenant in the query or the body.
    admin = acme.as_token(ADMIN_TOKEN)
    theirs_listed = await admin.get(f"{API}/subscriptions", params={"tenant_id": "globex"})
    assert [s["tenant_id"] for s in theirs_listed.json["subscriptions"]] == ["globex"]
    needs_tenant = await admin.get(f"{API}/subscriptions")
    assert needs_tenant.status == 400
    assert needs_tenant.violated_fields() == ["tenant_id"]


async def test_oversized_bodies_are_refused(
    make_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    server = await make_server(max_payload_bytes=1024)
    http = Http(server.http, session, None)
    over_limit = await http.post(f"{API}/events", raw=b'{"data": "' + b"x" * (5 << 20) + b'"}')
    assert over_limit.status == 413
    assert over_limit.json["code"] == 3
    over_payload = await http.post(
        f"{API}/events",
        {
            "tenant_id": "acme",
            "type": "product.created",
            "entity_id": "p1",
            "data": {"id": "p1", "name": "x" * 2000},
        },
    )
    assert over_payload.status == 400, over_payload.text
    assert over_payload.violated_fields() == ["data"]


async def test_a_declared_oversized_body_is_refused_before_it_is_sent(
    make_server: ServerFactory,
) -> None:
    """A client declaring a body over the limit gets 413 at once, not a connection held open
    while the server waits for bytes that will never come (or be refused)."""
    server = await make_server(max_payload_bytes=1024)
    host, port = server.http.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST {API}/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {100 << 20}\r\n\r\n{{".encode()
    )
    await writer.drain()
    try:
        status_line = await asyncio.wait_for(reader.readline(), 30)
    finally:
        writer.close()
    assert status_line.split()[1:2] == [b"413"], status_line


async def test_events_feed_and_event_types(
    secured: RunningServer, session: aiohttp.ClientSession, acme: Http
) -> None:
    publisher = Http(secured.http, session, PUBLISHER_TOKEN)
    registered = await publisher.post(
        f"{API}/event-types",
        {
            "type": "order.placed",
            "description": "An order",
            "fields": [{"path": "id", "classification": "CLASSIFICATION_PUBLIC"}],
        },
    )
    assert registered.status == 200, registered.text
    assert registered.json["event_type"]["entity"] == "order"
    types = await publisher.get(f"{API}/event-types", params={"entity": "order"})
    assert [t["type"] for t in types.json["event_types"]] == ["order.placed"]

    published = await publisher.post(
        f"{API}/events",
        {
            "tenant_id": "acme",
            "type": "order.placed",
            "entity_id": "o1",
            "data": {"id": "o1"},
            "occurred_at": "2026-01-02T03:04:05Z",
            "idempotency_key": "k1",
        },
    )
    assert published.status == 201, published.text
    event = published.json["event"]
    assert event["id"].startswith("evt_") and event["cursor"]
    assert event["occurred_at"] == "2026-01-02T03:04:05Z"
    batch = await publisher.post(
        f"{API}/events:batch",
        {
            "events": [
                {"tenant_id": "acme", "type": "product.created", "entity_id": f"p{i}"}
                for i in range(3)
            ]
        },
    )
    assert batch.status == 201, batch.text
    assert len(batch.json["events"]) == 3

    # The feed: a tenant reads its own, with repeated query parameters for patterns.
    first = await acme.get(
        f"{API}/events",
        params=[("page_size", "2"), ("event_patterns", "order.*"), ("event_patterns", "product.*")],
    )
    assert first.status == 200, first.text
    assert [e["id"] for e in first.json["events"]][:1] == [event["id"]]
    assert first.json["has_more"] is True
    rest = await acme.get(f"{API}/events", params={"after_cursor": first.json["next_cursor"]})
    assert [e["entity_id"] for e in rest.json["events"]] == ["p1", "p2"]
    assert rest.json["has_more"] is False
    tampered = await acme.get(f"{API}/events", params={"after_cursor": "nonsense"})
    assert tampered.status == 400
    tenant_publishes = await acme.post(f"{API}/events", {"type": "order.placed"})
    assert tenant_publishes.status == 403


async def test_deliveries(
    secured: RunningServer, session: aiohttp.ClientSession, acme: Http, receiver: Receiver
) -> None:
    receiver.on("/hook", statuses=[500])
    subscription_id = await _create(acme, receiver.url("/hook"))
    publisher = Http(secured.http, session, PUBLISHER_TOKEN)
    published = await publisher.post(
        f"{API}/events",
        {"tenant_id": "acme", "type": "product.created", "entity_id": "p1", "data": {"id": "p1"}},
    )
    event_id = published.json["event"]["id"]
    listed = await acme.get(f"{API}/deliveries", params={"event_id": event_id})
    assert listed.status == 200, listed.text
    [delivery] = listed.json["deliveries"]
    path = f"{API}/deliveries/{delivery['id']}"
    failed = await _wait_status(acme, path, "DELIVERY_STATUS_FAILED")
    assert failed["attempts"] and failed["attempts"][0]["status_code"] == 500

    retried = await acme.post(f"{path}/retry")
    assert retried.status == 200, retried.text
    assert retried.json["delivery"]["status"] == "DELIVERY_STATUS_PENDING"
    await _wait_status(acme, path, "DELIVERY_STATUS_FAILED")
    # Ten failed attempts may have disabled it (failure rate): recovering needs it active.
    await acme.post(f"{API}/subscriptions/{subscription_id}/activate")
    recovered = await acme.post(
        f"{API}/deliveries:recover",
        {"subscription_id": subscription_id, "since": "2000-01-01T00:00:00Z"},
    )
    assert recovered.status == 200, recovered.text
    assert recovered.json["recovered_count"] == 1
    globex = acme.as_token(GLOBEX_TOKEN)
    assert (await globex.get(path)).status == 404
    assert (await globex.post(f"{path}/retry")).status == 404


async def _wait_status(http: Http, path: str, status: str) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        reply = await http.get(path)
        assert reply.status == 200, reply.text
        delivery: dict[str, object] = reply.json["delivery"]
        if delivery["status"] == status:
            return delivery
        assert asyncio.get_running_loop().time() < deadline, delivery
        await asyncio.sleep(0.02)


async def test_one_api_with_grpc(secured: RunningServer, acme: Http) -> None:
    over_rest = await _create(acme)
    over_grpc = await secured.subscriptions.GetSubscription(
        subscriptions_pb2.GetSubscriptionRequest(id=over_rest), metadata=ACME
    )
    assert over_grpc.subscription.id == over_rest

    created = await secured.subscriptions.CreateSubscription(
        subscriptions_pb2.CreateSubscriptionRequest(
            url="https://example.com/grpc", event_patterns=["*"]
        ),
        metadata=ACME,
    )
    seen = await acme.get(f"{API}/subscriptions/{created.subscription.id}")
    assert seen.status == 200
    assert seen.json["subscription"]["url"] == "https://example.com/grpc"


async def test_health_and_readiness(server: RunningServer, session: aiohttp.ClientSession) -> None:
    http = Http(server.http, session, None)
    assert (await http.get("/healthz")).status == 200
    ready = await http.get("/readyz")
    assert ready.status == 200
    await publish(server)
    await subscribe(server, "https://example.com/hook")


async def test_open_mode_refuses_a_non_loopback_http_listener(database_url: str) -> None:
    settings = load_settings(
        None, env={}, overrides={"database_url": database_url, "http_listen": "0.0.0.0:0"}
    )
    with pytest.raises(StartupError, match="http_listen"):
        await App(settings).start()


async def test_an_empty_http_listen_disables_rest(make_server: ServerFactory) -> None:
    server = await make_server(http_listen="")
    assert server.app.http_port == 0


@pytest.mark.postgres
@pytest.mark.parametrize("outage", [Outage.REFUSE, Outage.BLACKHOLE])
async def test_readiness_follows_the_database(
    postgres_url: str, proxy: FaultProxy, session: aiohttp.ClientSession, outage: Outage
) -> None:
    server = await start_server(proxy.url(postgres_url))
    try:
        http = Http(server.http, session, None)
        assert (await http.get("/readyz")).status == 200
        await proxy.cut(outage)
        down = await http.get("/readyz")
        assert down.status == 503
        assert down.json["code"] == 14
        assert (await http.get("/healthz")).status == 200
        # A call that needs the database is UNAVAILABLE too, as over gRPC.
        listed = await http.get(f"{API}/subscriptions", params={"tenant_id": "acme"})
        assert listed.status == 503, listed.text
        await proxy.restore()
        deadline = asyncio.get_running_loop().time() + 10
        while (await http.get("/readyz")).status != 200:
            assert asyncio.get_running_loop().time() < deadline, "never ready again"
            await asyncio.sleep(0.05)
    finally:
        await proxy.restore()
        await server.stop()


async def test_serve_answers_rest_on_http_listen(
    database_url: str, session: aiohttp.ClientSession
) -> None:
    service = await LoggingProcess.start("serve", settings_env(database_url))
    try:
        port = int((await service.wait_for_line(r"REST/JSON API on http://[^:]+:(\d+)")).group(1))
        http = Http(f"http://127.0.0.1:{port}", session, None)
        assert (await http.get("/healthz")).status == 200
        assert (await http.get("/readyz")).status == 200
        published = await http.post(
            f"{API}/events",
            {"tenant_id": "acme", "type": "product.created", "entity_id": "p1", "data": {}},
        )
        assert published.status == 201, published.text
        assert await service.terminate() == 0
    finally:
        await service.close()
