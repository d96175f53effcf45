"""Event type names and the subscription patterns that select them (SPEC §2, §3)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence

from webhook_grpc.domain.errors import InvalidArgument

EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
ENTITY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
WILDCARD = "*"
MAX_NAME_LENGTH = 128
# The entity part is stored on its own (event_types.entity, entity_fields.entity).
MAX_ENTITY_LENGTH = 64
MAX_PATTERNS = 50

_TYPE_SHAPE = "'entity.action' in lowercase letters, digits and underscores"


def validate_event_type(name: str, field: str = "type") -> None:
    """Raise InvalidArgument unless `name` is a well-formed event type name."""
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(field, f"event type is longer than {MAX_NAME_LENGTH} characters")
    # fullmatch: `$` alone would accept a trailing newline.
    if not EVENT_TYPE_RE.fullmatch(name):
        raise InvalidArgument(field, f"event type {name!r} must look like {_TYPE_SHAPE}")
    if len(entity_of(name)) > MAX_ENTITY_LENGTH:
        raise InvalidArgument(
            field, f"the entity (before the dot) is longer than {MAX_ENTITY_LENGTH} characters"
        )


def entity_of(event_type: str) -> str:
    """The entity an event type belongs to: the part before the dot."""
    return event_type.partition(".")[0]


def validate_patterns(
    patterns: Sequence[str], known_types: Collection[str], field: str = "event_patterns"
) -> list[str]:
    """Check subscription patterns; return them without duplicates, in their original order."""
    if not patterns:
        raise InvalidArgument(field, "at least one event pattern is required")
    if len(patterns) > MAX_PATTERNS:
        raise InvalidArgument(field, f"at most {MAX_PATTERNS} event patterns are allowed")
    for index, pattern in enumerate(patterns):
        _validate_pattern(pattern, known_types, f"{field}[{index}]")
    return list(dict.fromkeys(patterns))


def _validate_pattern(pattern: str, known_types: Collection[str], field: str) -> None:
    if len(pattern) > MAX_NAME_LENGTH:
        raise InvalidArgument(field, f"pattern is longer than {MAX_NAME_LENGTH} characters")
    if pattern == WILDCARD:
        return
    if pattern.endswith(".*"):
        if not ENTITY_RE.fullmatch(pattern[:-2]):
            raise InvalidArgument(
                field,
                f"pattern {pattern!r}: the entity before '.*' must be lowercase letters, "
                "digits and underscores, starting with a letter",
            )
        # Accepted even when the entity has no types yet: modules onboard later.
        return
    if not EVENT_TYPE_RE.fullmatch(pattern):
        raise InvalidArgument(
            field,
            f"pattern {pattern!r} must be an event type ({_TYPE_SHAPE}), 'entity.*' or '*'",
        )
    if pattern not in known_types:
        known = ", ".join(sorted(known_types)) or "none"
        raise InvalidArgument(
            field, f"event type {pattern!r} is not registered; known types: {known}"
        )


def matches(pattern: str, event_type: str) -> bool:
    """Whether one pattern selects `event_type`; `*` selects every type, system ones included."""
    if pattern == WILDCARD:
        return True
    if pattern.endswith(".*"):
        # Keeps the dot ("product."), so "product.*" cannot match "products.created".
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def matches_any(patterns: Iterable[str], event_type: str) -> bool:
    """Whether any of `patterns` selects `event_type`."""
    return any(matches(pattern, event_type) for pattern in patterns)
