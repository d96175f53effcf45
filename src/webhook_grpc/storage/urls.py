"""Database URLs: what users write, and the driver each engine needs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url


def _backend(url: URL) -> str:
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return backend


def async_url(database_url: str) -> URL:
    """The URL with the asyncio driver: aiosqlite for SQLite, psycopg 3 for PostgreSQL."""
    url = make_url(database_url)
    driver = "aiosqlite" if _backend(url) == "sqlite" else "psycopg"
    return url.set(drivername=f"{url.get_backend_name()}+{driver}")


def sync_url(database_url: str) -> URL:
    """The URL with the blocking driver, for migrations: sqlite3 or psycopg 3."""
    url = make_url(database_url)
    driver = "pysqlite" if _backend(url) == "sqlite" else "psycopg"
    return url.set(drivername=f"{url.get_backend_name()}+{driver}")


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite database; None for PostgreSQL and in-memory SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):  # a URI filename (`?uri=true`)
        database = database[len("file:") :].partition("?")[0]
    return Path(database).resolve()


def is_sqlite(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "sqlite"
