"""Named values every process must agree on (the cursor key, the purge watermark)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..tables import ServiceStateRow
from ..tables.base import table_of
from .upsert import InsertOf

S = table_of(ServiceStateRow)


class CoreState:
    def __init__(self, conn: AsyncConnection, insert: InsertOf) -> None:
        self._conn = conn
        self._insert = insert

    async def get_or_create(self, name: str, make: Callable[[], str]) -> str:
        await self._conn.execute(
            self._insert(S)
            .values(name=name, value=make())
            .on_conflict_do_nothing(index_elements=[S.c.name])
        )
        value = await self.get(name)
        assert value is not None
        return value

    async def get(self, name: str) -> str | None:
        query = select(S.c.value).where(S.c.name == name)
        value = (await self._conn.execute(query)).scalar_one_or_none()
        return None if value is None else str(value)

    async def put(self, name: str, value: str) -> None:
        statement = self._insert(S).values(name=name, value=value)
        await self._conn.execute(
            statement.on_conflict_do_update(index_elements=[S.c.name], set_={"value": value})
        )
