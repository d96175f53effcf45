"""REST transcoding rules (api/rest): routes from the annotations, requests by the JSON mapping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from webhook_grpc._gen.webhooks.v1 import feed_pb2, subscriptions_pb2
from webhook_grpc.api.rest.routes import routes_of
from webhook_grpc.api.rest.status import RestError
from webhook_grpc.api.rest.transcode import request_message
from webhook_grpc.app import PROTO_FILES

ROUTES = {route.method.name: route for route in routes_of(PROTO_FILES)}


def test_every_rpc_has_a_route() -> None:
    rpcs = {
        method.name
        for file in PROTO_FILES
        for service in file.services_by_name.values()
        for method in service.methods
    }
    assert set(ROUTES) == rpcs
    update = ROUTES["UpdateSubscription"]
    assert (update.http_method, update.path) == ("PATCH", "/api/v1/webhooks/subscriptions/{id}")
    assert [v.field_path for v in update.variables] == ["subscription.id"]
    assert ROUTES["PublishEvents"].path == "/api/v1/webhooks/events:batch"


def _request(
    name: str, query: Sequence[tuple[str, str]] = (), body: bytes = b"", **path: str
) -> Any:
    return request_message(ROUTES[name], path, query, body)


def test_query_parameters_fill_fields_repeated_ones_repeat() -> None:
    request = _request(
        "ListEvents",
        [("pageSize", "5"), ("event_patterns", "a.*"), ("eventPatterns", "b.created")],
    )
    assert request == feed_pb2.ListEventsRequest(page_size=5, event_patterns=["a.*", "b.created"])
    stream = _request("StreamEvents", [("from_latest", "true")])
    assert stream.from_latest is True


@pytest.mark.parametrize(
    "query",
    [
        [("colour", "red")],
        [("page_size", "1"), ("page_size", "2")],
        [("from_latest", "yes")],
        [("page_size", "many")],
    ],
)
def test_bad_query_parameters_are_invalid_argument(query: list[tuple[str, str]]) -> None:
    name = "StreamEvents" if query[0][0] == "from_latest" else "ListEvents"
    with pytest.raises(RestError) as raised:
        _request(name, query)
    assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.http == 400


def test_the_path_wins_over_the_body() -> None:
    request = _request("ActivateSubscription", body=b'{"id": "sub_other"}', id="sub_1")
    assert request.id == "sub_1"


def test_patch_without_a_mask_replaces_the_fields_the_body_names() -> None:
    request = _request(
        "UpdateSubscription",
        body=b'{"tenant_id": "acme", "description": "d", "eventPatterns": ["*"]}',
        id="sub_1",
    )
    assert request.subscription == subscriptions_pb2.Subscription(
        id="sub_1", tenant_id="acme", description="d", event_patterns=["*"]
    )
    # The identity fields name the subscription; they are not changes.
    assert sorted(request.update_mask.paths) == ["description", "event_patterns"]
    explicit = _request(
        "UpdateSubscription",
        [("update_mask", "url")],
        body=b'{"url": "https://example.com", "description": "d"}',
        id="sub_1",
    )
    assert list(explicit.update_mask.paths) == ["url"]


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"nope": 1}', b'{"url": 1}', b"\xff"])
def test_bad_bodies_are_invalid_argument(body: bytes) -> None:
    with pytest.raises(RestError) as raised:
        _request("CreateSubscription", body=body)
    assert raised.value.http == 400
