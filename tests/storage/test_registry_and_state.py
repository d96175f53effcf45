"""Event types with their entities' field rules, and the values every process agrees on."""

from __future__ import annotations

from webhook_grpc.domain.projection import Classification
from webhook_grpc.storage.ports import Storage

from .conftest import NOW, later

PUBLIC, CONFIDENTIAL = Classification.PUBLIC, Classification.CONFIDENTIAL


async def test_types_and_fields_upsert(storage: Storage) -> None:
    async with storage.transaction() as unit:
        await unit.registry.upsert_type("product.created", "product", "first", NOW)
        await unit.registry.upsert_type("product.created", "product", "second", later(1))
        await unit.registry.upsert_type(
            "webhook.test", "webhook", "built in", NOW, built_in=True, overwrite=False
        )
        await unit.registry.upsert_type(
            "webhook.test", "webhook", "not again", later(1), built_in=True, overwrite=False
        )
        await unit.registry.upsert_fields("product", {"sku": PUBLIC, "cost": PUBLIC}, NOW)
        await unit.registry.upsert_fields("product", {"cost": CONFIDENTIAL}, later(1))
        await unit.registry.upsert_fields("product", {"sku": CONFIDENTIAL}, NOW, overwrite=False)
    async with storage.read() as unit:
        product = await unit.registry.get_type("product.created")
        listed = await unit.registry.list_types()
        products = await unit.registry.list_types("product")
        names = await unit.registry.type_names()
        fields = await unit.registry.entity_fields({"product", "order"})
        assert await unit.registry.get_type("order.created") is None
    assert product is not None
    assert (product.description, product.created_at, product.updated_at) == (
        "second",
        NOW,
        later(1),
    )
    assert [t.type for t in listed] == ["product.created", "webhook.test"]
    assert listed[1].description == "built in" and listed[1].built_in
    assert [t.type for t in products] == ["product.created"]
    assert names == {"product.created", "webhook.test"}
    assert fields == {"product": {"sku": PUBLIC, "cost": CONFIDENTIAL}, "order": {}}


async def test_state_is_created_once_and_can_be_replaced(storage: Storage) -> None:
    async with storage.transaction() as unit:
        assert await unit.state.get("cursor_key") is None
        assert await unit.state.get_or_create("cursor_key", lambda: "first") == "first"
        assert await unit.state.get_or_create("cursor_key", lambda: "second") == "first"
        await unit.state.put("watermark", "1:2")
        await unit.state.put("watermark", "3:4")
    async with storage.read() as unit:
        assert await unit.state.get("watermark") == "3:4"
