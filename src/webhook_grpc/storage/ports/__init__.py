"""The storage port: what services and the dispatcher need of the database, in domain terms."""

from .records import (
    LeasedWork,
    LeaseRequest,
    NewDelivery,
    NewEvent,
    PortalGrant,
    PortalLinkState,
    PublishContext,
    SealedSecrets,
    StaleContext,
)
from .repositories import (
    DeliveryRepository,
    EventRepository,
    FeedRepository,
    PortalSessionRepository,
    RegistryRepository,
    RetentionRepository,
    StateRepository,
    SubscriptionRepository,
)
from .unit_of_work import Storage, UnitOfWork
from .wakeups import Wakeups, wait_for_wake

__all__ = [
    "DeliveryRepository",
    "EventRepository",
    "FeedRepository",
    "LeaseRequest",
    "LeasedWork",
    "NewDelivery",
    "NewEvent",
    "PortalGrant",
    "PortalLinkState",
    "PortalSessionRepository",
    "PublishContext",
    "RegistryRepository",
    "RetentionRepository",
    "SealedSecrets",
    "StaleContext",
    "StateRepository",
    "Storage",
    "SubscriptionRepository",
    "UnitOfWork",
    "Wakeups",
    "wait_for_wake",
]
