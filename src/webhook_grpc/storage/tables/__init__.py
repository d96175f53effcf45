"""SQLAlchemy tables, one aggregate per module."""

from .base import Base
from .deliveries import AttemptRow, DeliveryRow
from .events import EventRow
from .portal_sessions import PortalSessionRow
from .registry import EntityFieldRow, EventTypeRow
from .state import ServiceStateRow
from .subscriptions import SubscriptionRow

__all__ = [
    "AttemptRow",
    "Base",
    "DeliveryRow",
    "EntityFieldRow",
    "EventRow",
    "EventTypeRow",
    "PortalSessionRow",
    "ServiceStateRow",
    "SubscriptionRow",
]
