"""The production registry of the overview page (SPEC §2): built-in event types and schemas."""

from __future__ import annotations

from types import MappingProxyType

from .projection import Classification

P, I, C, R = (
    Classification.PUBLIC,
    Classification.INTERNAL,
    Classification.CONFIDENTIAL,
    Classification.RESTRICTED,
)

SERVICE_ENTITY = "webhook"
"""The entity of the service's own events (`webhook.test`, `webhook.subscription_disabled`):
only the service publishes them, and no caller may register or reclassify them (SPEC §12)."""


def is_service_type(event_type: str) -> bool:
    return event_type.startswith(SERVICE_ENTITY + ".")


BUILTIN_TYPES: MappingProxyType[str, str] = MappingProxyType(
    {
        "product.created": "A new product was created",
        "product.price_changed": "Product selling or cost price changed",
        "product.activated": "Product was activated",
        "product.deactivated": "Product was deactivated",
        "product.discontinued": "Product was discontinued",
        "customer.created": "A new customer was created",
        "customer.status_changed": "Customer status was updated",
        "customer.assigned": "Customer was assigned to a new representative",
        # The service's own events: a test delivery, and why pushes stopped.
        "webhook.test": "A test event sent by SendTestEvent",
        "webhook.subscription_disabled": "A subscription was disabled automatically",
    }
)

BUILTIN_SCHEMAS: MappingProxyType[str, MappingProxyType[str, Classification]] = MappingProxyType(
    {
        "product": MappingProxyType(
            {
                "id": P,
                "sku": P,
                "name": P,
                "status": P,
                "selling_price": P,
                "currency": P,
                "category_id": I,
                "supplier_id": I,
                "created_at": P,
                "updated_at": P,
                "activated_at": P,
                "deactivated_at": P,
                "discontinued_at": P,
                "cost_price": C,
                "margin": C,
                "notes": C,
                "internal_notes": C,
            }
        ),
        "customer": MappingProxyType(
            {
                "id": P,
                "name": P,
                "status": P,
                "type": P,
                "assigned_rep_id": I,
                "previous_rep_id": I,
                "created_at": P,
                "updated_at": P,
                "email": C,
                "phone": C,
                "address": C,
                "lifetime_value": C,
                "notes": C,
                "credit_limit": C,
                "assigned_rep": R,
                "assigned_rep.salary": R,
                "assigned_rep.commission_rate": R,
                "api_key": R,
                "password": R,
            }
        ),
        "webhook": MappingProxyType(
            {
                "id": P,
                "message": P,
                "subscription_id": P,
                "reason": P,
                "failure_rate": P,
                "failed_attempts": P,
                "total_attempts": P,
                "window_seconds": P,
                "disabled_at": P,
            }
        ),
    }
)
