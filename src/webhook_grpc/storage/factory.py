"""The one place a driver is chosen: from the database URL."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection

from .ports import Storage
from .postgresql import open_postgres, take_migration_lock
from .sqlite import open_sqlite
from .urls import async_url


def open_storage(database_url: str, *, pool_size: int = 10) -> Storage:
    """Storage for `database_url` (sqlite:/// or postgresql://), with its engine's driver."""
    url = async_url(database_url)
    if url.get_backend_name() == "sqlite":
        return open_sqlite(url)
    return open_postgres(url, database_url, pool_size=pool_size)


def migration_lock(database_url: str) -> Callable[[Connection], None]:
    """What a migration takes on its connection first, so that processes starting together do
    not migrate at once: PostgreSQL's advisory lock; nothing on SQLite, whose file one process
    holds (process_lock.py) and whose writers the database serialises."""
    if async_url(database_url).get_backend_name() == "sqlite":
        return lambda _connection: None
    return take_migration_lock
