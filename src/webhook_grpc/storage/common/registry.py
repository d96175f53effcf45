"""Event types and entity field schemas in the database, shared by every process."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.models import EventType
from webhook_grpc.domain.projection import Classification

from ..tables import EntityFieldRow, EventTypeRow
from ..tables.base import table_of
from .upsert import InsertOf

TYPES = table_of(EventTypeRow)
FIELDS = table_of(EntityFieldRow)


def known_and_schemas(
    rows: Iterable[Sequence[Any]],
) -> tuple[set[str], dict[str, dict[str, Classification]]]:
    """From (type, entity, path, classification) rows, path None for an entity without
    fields: the types found, and the field schema of their entities."""
    known: set[str] = set()
    schemas: dict[str, dict[str, Classification]] = {}
    for event_type, entity, path, classification in rows:
        known.add(event_type)
        fields = schemas.setdefault(entity, {})
        if path is not None:
            fields[path] = Classification(classification)
    return known, schemas


async def types_with_schemas(
    conn: AsyncConnection, event_types: set[str]
) -> tuple[set[str], dict[str, dict[str, Classification]]]:
    """Which of `event_types` are registered, and the field schema of their entities, in one
    query (publishing asks this on every call)."""
    query = (
        select(TYPES.c.type, TYPES.c.entity, FIELDS.c.path, FIELDS.c.classification)
        .select_from(TYPES.outerjoin(FIELDS, FIELDS.c.entity == TYPES.c.entity))
        .where(TYPES.c.type.in_(sorted(event_types)))
    )
    return known_and_schemas(await conn.execute(query))


class CoreRegistry:
    def __init__(self, conn: AsyncConnection, insert: InsertOf) -> None:
        self._conn = conn
        self._insert = insert

    async def upsert_type(
        self,
        event_type: str,
        entity: str,
        description: str,
        now: datetime,
        *,
        built_in: bool = False,
        overwrite: bool = True,
    ) -> None:
        statement = self._insert(TYPES).values(
            type=event_type,
            entity=entity,
            description=description,
            built_in=built_in,
            created_at=now,
            updated_at=now,
        )
        if overwrite:
            statement = statement.on_conflict_do_update(
                index_elements=[TYPES.c.type],
                set_={"description": description, "updated_at": now},
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=[TYPES.c.type])
        await self._conn.execute(statement)

    async def upsert_fields(
        self,
        entity: str,
        fields: Mapping[str, Classification],
        now: datetime,
        *,
        overwrite: bool = True,
    ) -> None:
        if not fields:
            return
        statement = self._insert(FIELDS).values(
            [
                {"entity": entity, "path": path, "classification": c.value, "updated_at": now}
                for path, c in fields.items()
            ]
        )
        keys = [FIELDS.c.entity, FIELDS.c.path]
        if overwrite:
            statement = statement.on_conflict_do_update(
                index_elements=keys,
                set_={"classification": statement.excluded.classification, "updated_at": now},
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=keys)
        await self._conn.execute(statement)

    async def list_types(self, entity: str | None = None) -> list[EventType]:
        query = select(TYPES).order_by(TYPES.c.type)
        if entity:
            query = query.where(TYPES.c.entity == entity)
        return [EventType(**row._mapping) for row in await self._conn.execute(query)]

    async def type_names(self) -> set[str]:
        return set((await self._conn.execute(select(TYPES.c.type))).scalars())

    async def get_type(self, event_type: str) -> EventType | None:
        query = select(TYPES).where(TYPES.c.type == event_type)
        row = (await self._conn.execute(query)).first()
        return EventType(**row._mapping) if row else None

    async def entity_fields(self, entities: set[str]) -> dict[str, dict[str, Classification]]:
        schemas: dict[str, dict[str, Classification]] = {entity: {} for entity in entities}
        if not entities:
            return schemas
        query = select(FIELDS.c.entity, FIELDS.c.path, FIELDS.c.classification).where(
            FIELDS.c.entity.in_(sorted(entities))
        )
        for entity, path, classification in await self._conn.execute(query):
            schemas[entity][path] = Classification(classification)
        return schemas
