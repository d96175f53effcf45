"""The psycopg fast path for the hottest statements on PostgreSQL.

A SQLAlchemy statement costs 0.5-0.8 ms of Python per execution (compilation cache lookup,
result processing, type decorators, greenlet switches) where psycopg alone costs ~0.15 ms. These
helpers run a prepared statement on the psycopg connection underneath a pooled SQLAlchemy
connection, in whatever transaction state that connection is in, and fail like SQLAlchemy
would: a lost connection is invalidated and reported as StorageUnavailable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, LiteralString

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.errors import StorageUnavailable

Params = dict[str, Any]


async def fetch_all(conn: AsyncConnection, query: LiteralString, params: Params) -> list[Any]:
    """The rows of `query` (prepared once per connection), run on `conn`'s driver connection,
    as named tuples: read by column name, never by position."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    try:
        async with driver.cursor(row_factory=namedtuple_row) as cursor:
            await cursor.execute(query, params, prepare=True)
            return await cursor.fetchall()
    except (psycopg.OperationalError, psycopg.InterfaceError) as error:
        await conn.invalidate()
        raise StorageUnavailable(str(error)) from error


@asynccontextmanager
async def transaction(conn: AsyncConnection) -> AsyncIterator[None]:
    """A transaction on `conn`, which may be in autocommit mode: statements run on `conn`
    inside the block, SQLAlchemy's or the fast path's, commit together when it ends."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    try:
        async with driver.transaction():
            yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as error:
        await conn.invalidate()
        raise StorageUnavailable(str(error)) from error


def json_document(value: Any) -> str:
    """`value` as one JSON parameter (datetimes in ISO 8601), for statements that take a
    whole batch as one document: the statement text stays the same for every batch size, and
    one json.dumps costs far less than adapting a parameter per column and row."""
    return json.dumps(value, default=_isoformat)


def _isoformat(value: datetime) -> str:
    return value.isoformat()
