"""Named values every process must agree on (the cursor key, the purge watermark)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import ServiceStateRow
from .tables.base import table_of

S = table_of(ServiceStateRow)


async def get_or_create(conn: AsyncConnection, name: str, make: Callable[[], str]) -> str:
    """The stored value; the first process to ask stores `make()` and all others read it."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    await conn.execute(
        dialect.insert(S)
        .values(name=name, value=make())
        .on_conflict_do_nothing(index_elements=[S.c.name])
    )
    return str((await conn.execute(select(S.c.value).where(S.c.name == name))).scalar_one())


async def get(conn: AsyncConnection, name: str) -> str | None:
    value = (await conn.execute(select(S.c.value).where(S.c.name == name))).scalar_one_or_none()
    return None if value is None else str(value)


async def put(conn: AsyncConnection, name: str, value: str) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(S).values(name=name, value=value)
    await conn.execute(
        statement.on_conflict_do_update(index_elements=[S.c.name], set_={"value": value})
    )
