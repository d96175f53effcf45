"""The one place a driver is chosen: from the database URL."""

from __future__ import annotations

from .ports import Storage
from .postgresql import open_postgres
from .sqlite import open_sqlite
from .urls import async_url


def open_storage(database_url: str, *, pool_size: int = 10) -> Storage:
    """Storage for `database_url` (sqlite:/// or postgresql://), with its engine's driver."""
    url = async_url(database_url)
    if url.get_backend_name() == "sqlite":
        return open_sqlite(url)
    return open_postgres(url, database_url, pool_size=pool_size)
