"""The event type registry: built-ins, RegisterEventType, and the schemas projection uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from webhook_grpc.domain.builtin_types import (
    BUILTIN_SCHEMAS,
    BUILTIN_TYPES,
    SERVICE_ENTITY,
    is_service_type,
)
from webhook_grpc.domain.clock import Clock, system_clock
from webhook_grpc.domain.errors import InvalidArgument, PermissionDenied
from webhook_grpc.domain.models import EventType
from webhook_grpc.domain.patterns import entity_of, validate_event_type
from webhook_grpc.domain.projection import Classification, less_private
from webhook_grpc.storage.ports import Storage

MAX_FIELDS = 500
MAX_PATH_LENGTH = 256
MAX_DESCRIPTION = 1024


@dataclass(frozen=True)
class EventTypeInfo:
    event_type: EventType
    fields: dict[str, Classification]


class RegistryService:
    def __init__(self, storage: Storage, clock: Clock = system_clock) -> None:
        self._storage = storage
        self._clock = clock

    async def ensure_builtins(self) -> None:
        """Insert the built-in types and fields that are missing; never undo a reclassification."""
        now = self._clock()
        async with self._storage.transaction() as unit:
            for event_type, description in BUILTIN_TYPES.items():
                await unit.registry.upsert_type(
                    event_type,
                    entity_of(event_type),
                    description,
                    now,
                    built_in=True,
                    overwrite=False,
                )
            for entity, fields in BUILTIN_SCHEMAS.items():
                await unit.registry.upsert_fields(entity, fields, now, overwrite=False)

    async def register(
        self,
        event_type: str,
        description: str,
        fields: Sequence[tuple[str, Classification | None]],
        *,
        may_make_less_private: bool = False,
    ) -> EventTypeInfo:
        """Create or update an event type and classify its entity's fields. Making an already
        classified field less private (CONFIDENTIAL to PUBLIC, say) needs
        `may_make_less_private` (an admin); new fields and more private classes do not."""
        validate_event_type(event_type, "type")
        if is_service_type(event_type):
            raise PermissionDenied(
                f"type: {event_type!r}: the {SERVICE_ENTITY}.* event types belong to the service "
                "itself and cannot be registered or reclassified"
            )
        if len(description) > MAX_DESCRIPTION:
            raise InvalidArgument("description", f"at most {MAX_DESCRIPTION} characters")
        if len(fields) > MAX_FIELDS:
            raise InvalidArgument("fields", f"at most {MAX_FIELDS} field rules")
        rules: dict[str, Classification] = {}
        for index, (path, classification) in enumerate(fields):
            _validate_path(path, f"fields[{index}].path")
            if classification is None:
                raise InvalidArgument(
                    f"fields[{index}].classification",
                    "must be PUBLIC, INTERNAL, CONFIDENTIAL or RESTRICTED",
                )
            rules[path] = classification
        entity = entity_of(event_type)
        now = self._clock()
        async with self._storage.transaction() as unit:
            current = (await unit.registry.entity_fields({entity}))[entity]
            if not may_make_less_private and (relaxed := less_private(current, rules)):
                changes = ", ".join(
                    f"{path} ({was.name} to {rules[path].name})" for path, was in relaxed.items()
                )
                raise PermissionDenied(
                    f"fields: making a field less private needs an admin token: {changes}"
                )
            await unit.registry.upsert_type(event_type, entity, description, now)
            await unit.registry.upsert_fields(entity, rules, now)
            record = await unit.registry.get_type(event_type)
            schemas = await unit.registry.entity_fields({entity})
        assert record is not None
        return EventTypeInfo(record, schemas[entity])

    async def list(self, entity: str = "") -> list[EventTypeInfo]:
        async with self._storage.read() as unit:
            records = await unit.registry.list_types(entity or None)
            schemas = await unit.registry.entity_fields({r.entity for r in records})
        return [EventTypeInfo(r, schemas[r.entity]) for r in records]


def _validate_path(path: str, field: str) -> None:
    if not path or len(path) > MAX_PATH_LENGTH:
        raise InvalidArgument(field, f"must be 1 to {MAX_PATH_LENGTH} characters")
    if any(not part or not part.isprintable() or part.strip() != part for part in path.split(".")):
        raise InvalidArgument(field, "must be dotted field names without empty parts or spaces")
