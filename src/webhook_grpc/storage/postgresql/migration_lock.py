"""Migrations on PostgreSQL: processes starting together take turns."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

# Any constant unique to this purpose; processes starting together serialise on it.
_MIGRATION_LOCK = 0x77686B5F6D6967  # "whk_mig"


def take_migration_lock(connection: Connection) -> None:
    """Held until `connection`'s transaction commits, and PostgreSQL runs DDL transactionally:
    a second process waits, then finds the schema current and does nothing."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
