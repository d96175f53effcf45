"""Who is calling: the roles a bearer token grants, and what a tenant id looks like (SPEC §5)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from .errors import InvalidArgument

MAX_TENANT_ID: Final = 128
TENANT_ID_FORM: Final = (
    f"1 to {MAX_TENANT_ID} characters: ASCII letters, digits, '_', '.' and '-', "
    "starting with a letter or digit"
)
# Tenant ids name tenants in tokens, logs, metrics and URLs (REST paths), so they are plain
# ASCII words: no spaces, no look-alike Unicode, nothing that needs escaping.
_TENANT_ID: Final = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_TENANT_ID - 1}}}")


def is_tenant_id(value: str) -> bool:
    """Whether `value` has the form of a tenant id (`TENANT_ID_FORM`)."""
    return _TENANT_ID.fullmatch(value) is not None


def check_tenant_id(value: str, field: str = "tenant_id") -> str:
    """`value` if it is a tenant id; otherwise INVALID_ARGUMENT naming `field`."""
    if not is_tenant_id(value):
        raise InvalidArgument(field, f"{value!r} is not a tenant id: use {TENANT_ID_FORM}")
    return value


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
