"""Test databases: a temporary SQLite file, or a fresh PostgreSQL database for the session.

PostgreSQL is required when CI=true (an unreachable server fails the run); elsewhere its tests
are skipped with a clear message while the SQLite suite runs."""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from psycopg import sql

from webhook_grpc.storage.tables import Base

ADMIN_URL = os.environ.get(
    "WEBHOOK_GRPC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# Every table the schema declares (alembic's own table stays), so a new table cannot be
# left out and carry rows from one test into the next.
TABLES = tuple(table.name for table in Base.metadata.sorted_tables)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    message = f"PostgreSQL at {ADMIN_URL} is unreachable: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true requires the PostgreSQL suite)", pytrace=False)
    pytest.skip(f"{message}; skipping PostgreSQL tests (set CI=true to make this an error)")


class PostgresDatabase:
    """One database for the whole test session, emptied between tests."""

    def __init__(self) -> None:
        self.name = f"webhook_grpc_test_{uuid.uuid4().hex[:10]}"
        base = ADMIN_URL.rsplit("/", 1)[0]
        self.url = f"{base}/{self.name}"

    def create(self) -> None:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )

    def truncate(self) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=3) as conn:
            exists = conn.execute("SELECT to_regclass('events') IS NOT NULL").fetchone()
            if exists and exists[0]:
                conn.execute(
                    sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                        sql.SQL(", ").join(sql.Identifier(t) for t in TABLES)
                    )
                )
