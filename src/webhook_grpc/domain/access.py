"""Who is calling: the roles a bearer token grants (SPEC §5)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    PUBLISHER = "publisher"
    """Publishes events and registers event types, for any tenant (internal services)."""
    TENANT = "tenant"
    """Bound to one tenant: its subscriptions, feed and deliveries."""
    ADMIN = "admin"
    """Everything."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; `tenant` is set only for the tenant role."""

    role: Role
    tenant: str | None
