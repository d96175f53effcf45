from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from webhook_grpc.dispatch.bodies import BodyCache
from webhook_grpc.domain.models import Event, PayloadMode
from webhook_grpc.domain.payload import encode_body

EVENT = Event(
    id="evt_1",
    tenant_id="acme",
    type="product.price_changed",
    entity_id="p1",
    data={"id": "p1", "price": "9.90", "cost": "4.10"},
    previous={"id": "p1", "price": "8.90"},
    occurred_at=datetime(2026, 11, 28, 10, 0, tzinfo=UTC),
    published_at=datetime(2026, 11, 28, 10, 0, 1, tzinfo=UTC),
)


def test_the_same_event_projected_again_reuses_its_body() -> None:
    cache = BodyCache()
    first = cache.body(EVENT, PayloadMode.FULL)
    # Another lease batch: an equal event, projected again into new objects.
    again = cache.body(replace(EVENT, data=dict(EVENT.data)), PayloadMode.FULL)
    assert again is first
    assert first == encode_body(EVENT, PayloadMode.FULL)


def test_each_payload_mode_has_its_own_body() -> None:
    cache = BodyCache()
    full = cache.body(EVENT, PayloadMode.FULL)
    thin = cache.body(EVENT, PayloadMode.THIN)
    assert json.loads(thin)["data"] == {"id": "p1"}
    assert json.loads(full)["data"]["price"] == "9.90"
    assert len(cache) == 2


def test_a_field_gone_from_the_projection_is_gone_from_the_next_body() -> None:
    cache = BodyCache()
    cache.body(EVENT, PayloadMode.FULL)
    reclassified = replace(EVENT, data={"id": "p1", "price": "9.90"})
    body = json.loads(cache.body(reclassified, PayloadMode.FULL))
    assert "cost" not in body["data"]
    hidden_previous = replace(reclassified, previous={"id": "p1"})
    assert json.loads(cache.body(hidden_previous, PayloadMode.FULL))["previous"] == {"id": "p1"}
    assert len(cache) == 1


def test_the_oldest_bodies_go_past_the_limit() -> None:
    size = len(encode_body(EVENT, PayloadMode.FULL))
    cache = BodyCache(limit=2 * size + 10)
    for index in range(5):
        cache.body(replace(EVENT, id=f"evt_{index}"), PayloadMode.FULL)
    assert len(cache) == 2
    assert cache.size <= 2 * size + 10
    # A body larger than the whole limit is encoded and not kept.
    tiny = BodyCache(limit=10)
    assert tiny.body(EVENT, PayloadMode.FULL) == encode_body(EVENT, PayloadMode.FULL)
    assert len(tiny) == 0 and tiny.size == 0
