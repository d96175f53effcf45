from __future__ import annotations

import json
from datetime import UTC, datetime

from webhook_grpc.domain.models import Event, PayloadMode
from webhook_grpc.domain.payload import encode_body, iso_millis

EVENT = Event(
    id="evt_1",
    tenant_id="acme",
    type="product.price_changed",
    entity_id="prod_1",
    data={"id": "prod_1", "selling_price": "19.90"},
    previous={"selling_price": "17.50"},
    occurred_at=datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=UTC),
    published_at=datetime(2026, 11, 28, 10, 0, 1, tzinfo=UTC),
)


def test_full_body_is_the_spec_envelope() -> None:
    assert json.loads(encode_body(EVENT, PayloadMode.FULL)) == {
        "id": "evt_1",
        "type": "product.price_changed",
        "tenant_id": "acme",
        "entity_id": "prod_1",
        "occurred_at": "2026-11-28T10:00:00.123Z",
        "published_at": "2026-11-28T10:00:01.000Z",
        "data": {"id": "prod_1", "selling_price": "19.90"},
        "previous": {"selling_price": "17.50"},
    }


def test_thin_body_carries_only_the_entity_id() -> None:
    body = json.loads(encode_body(EVENT, PayloadMode.THIN))
    assert body["entity_id"] == "prod_1"
    assert body["data"] == {"id": "prod_1"}
    assert "previous" not in body


def test_no_previous_key_when_none_was_published() -> None:
    from dataclasses import replace

    body = json.loads(encode_body(replace(EVENT, previous=None), PayloadMode.FULL))
    assert "previous" not in body


def test_iso_millis_converts_to_utc() -> None:
    from datetime import timedelta, timezone

    local = datetime(2026, 1, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert iso_millis(local) == "2026-01-01T10:00:00.999Z"


def test_iso_millis_keeps_zero_milliseconds_and_truncates_micros() -> None:
    assert iso_millis(datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)) == "2026-01-01T00:00:00.000Z"
    assert iso_millis(datetime(2026, 1, 1, 0, 0, 0, 1999, tzinfo=UTC)) == "2026-01-01T00:00:00.001Z"
