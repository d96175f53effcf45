"""The PostgreSQL driver: READ COMMITTED with explicit locks where a rule needs one, SKIP LOCKED
leasing, the feed's visibility horizon, LISTEN/NOTIFY wake-ups, and raw psycopg statements on
the hot paths (publishing, leasing, recording attempts)."""

from .migration_lock import take_migration_lock
from .storage import CONNECT_TIMEOUT, POOL_TIMEOUT, open_postgres

__all__ = ["CONNECT_TIMEOUT", "POOL_TIMEOUT", "open_postgres", "take_migration_lock"]
