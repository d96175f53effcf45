"""The event the filter measurements share: a `product.price_changed` of the overview."""

from __future__ import annotations

from typing import Any, Final

SPEC_EXAMPLE: Final = 'type == "product.price_changed" && double(data.selling_price) > 100.0'

PRODUCT: Final[dict[str, Any]] = {
    "id": "prod_1",
    "sku": "A-1",
    "name": "Blue Widget",
    "status": "active",
    "selling_price": "119.90",
    "currency": "EUR",
    "category_id": "cat_7",
    "supplier_id": "sup_3",
    "created_at": "2026-11-28T08:00:00Z",
    "updated_at": "2026-11-28T10:00:00.123Z",
}
"""Public and internal fields only: what a filter sees after projection."""

CONFIDENTIAL: Final[dict[str, Any]] = {"cost_price": "80.00", "margin": "0.33"}
PREVIOUS: Final[dict[str, Any]] = {"selling_price": "99.50"}
