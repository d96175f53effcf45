"""The privacy allowlist: what of an entity may leave the service (SPEC §2).

Only fields whose dotted path the entity schema declares public or internal are kept; anything
undeclared is dropped, and nothing under a confidential or restricted path is ever looked into.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from typing import Any, Final, TypeAlias

from .models import Event, StoredEvent


class Classification(enum.Enum):
    """How sensitive a field is; only public and internal fields are shared."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"

    @property
    def shareable(self) -> bool:
        """Whether webhook payloads and the feed may carry fields of this class."""
        return self in (Classification.PUBLIC, Classification.INTERNAL)


FieldRules: TypeAlias = Mapping[str, Classification]
"""Classification by dotted field path, e.g. ``"assigned_rep.salary"``."""


# Part of every rules version: raise it whenever `project` itself changes what it keeps (the
# credential names, say), so that events stored under the old code are projected again.
_PROJECTION_CODE: Final = 1


def rules_version(rules: FieldRules) -> int:
    """A version of `rules` that an event stores with its projected data: as long as the
    entity's rules give the same version, projecting the stored data again changes nothing, so
    readers may skip it. A fingerprint of the rules (and of `_PROJECTION_CODE`) rather than a
    counter, so that it needs no write when rules change and cannot go stale in a race between
    a publish and a rules change: the version is of the very rules the event was projected
    with. 63 bits of BLAKE2b, a signed 64-bit integer in the database."""
    canonical = "\n".join(f"{path}\0{rules[path].value}" for path in sorted(rules))
    digest = hashlib.blake2b(f"{_PROJECTION_CODE}\n{canonical}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def less_private(current: FieldRules, requested: FieldRules) -> dict[str, Classification]:
    """The already classified paths that `requested` would make less private, with their
    current class (paths `current` does not know yet are not in it)."""
    order = list(Classification)  # from the least private to the most
    return {
        path: current[path]
        for path, wanted in sorted(requested.items())
        if path in current and order.index(wanted) < order.index(current[path])
    }


_CREDENTIAL_NAMES: Final = frozenset({"password", "api_key"})
_CREDENTIAL_SUFFIXES: Final = ("_secret", "_token")


class _Dropped:
    """Marker for a value that the allowlist removes."""


_DROP: Final = _Dropped()


def is_credential_name(key: str) -> bool:
    """Whether a field name looks like a credential; such fields are dropped whatever the rules."""
    name = key.lower()
    return name in _CREDENTIAL_NAMES or name.endswith(_CREDENTIAL_SUFFIXES)


def project(data: Mapping[str, Any], rules: FieldRules) -> dict[str, Any]:
    """Return a new dict holding only the shareable fields of `data`; `data` is not modified."""
    return _project_mapping(data, "", rules)


def _project_mapping(data: Mapping[Any, Any], prefix: str, rules: FieldRules) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        # A key with a dot cannot be told apart from a nested path, so no rule can allow it.
        if not isinstance(key, str) or "." in key or is_credential_name(key):
            continue
        path = prefix + key
        kept = _project_value(value, path, rules)
        if kept is not _DROP:
            out[key] = kept
    return out


def _project_value(value: Any, path: str, rules: FieldRules) -> Any:
    classification = rules.get(path)
    if classification is not None and not classification.shareable:
        return _DROP
    return _project_declared(value, path, classification is not None, rules)


def _project_declared(value: Any, path: str, shareable: bool, rules: FieldRules) -> Any:
    # `path` is not blocked here; `shareable` says whether it is itself declared public/internal.
    if isinstance(value, Mapping):
        children = _project_mapping(value, path + ".", rules)
        return children if children or shareable else _DROP
    if isinstance(value, list | tuple):
        # List elements share the list's path: "lines.sku" addresses the sku of every line.
        items = [
            item
            for item in (_project_declared(element, path, shareable, rules) for element in value)
            if item is not _DROP
        ]
        return items if items or shareable else _DROP
    return value if shareable else _DROP


def hides_every_change(
    published_previous: Mapping[str, Any] | None, projected_previous: Mapping[str, Any] | None
) -> bool:
    """Whether the projection removed every field the publisher said had changed.

    Such an event tells a consumer nothing but that a confidential or restricted field changed
    (a `product.price_changed` whose only change is `cost_price`), so it is not shared at all:
    delivering it, even without `previous`, would disclose that change."""
    return bool(published_previous) and not projected_previous


def project_event(event: Event, rules: FieldRules, cursor: str | None = None) -> Event:
    """The event with `data` and `previous` projected by `rules` (the schema of today), and
    with `cursor` when one is given. A `previous` left empty is dropped: an empty object would
    tell the consumer that a field it may not see changed (one reclassified since publishing)."""
    previous = project(event.previous, rules) if event.previous else None
    # Built directly rather than with dataclasses.replace: the feed calls this per event.
    return Event(
        event.id,
        event.tenant_id,
        event.type,
        event.entity_id,
        project(event.data, rules),
        previous or None,
        event.occurred_at,
        event.published_at,
        event.cursor if cursor is None else cursor,
        event.trace_context,
    )


def project_stored(
    stored: StoredEvent, rules: FieldRules, version: int, cursor: str | None = None
) -> Event:
    """`project_event` for an event read back from storage, where `version` is
    `rules_version(rules)`: the event as stored (with `cursor`) when it was projected with rules
    of that version, since projecting it again would change nothing."""
    if stored.rules_version != version:
        return project_event(stored.event, rules, cursor)
    event = stored.event
    if cursor is None:
        return event
    return Event(
        event.id,
        event.tenant_id,
        event.type,
        event.entity_id,
        event.data,
        event.previous,
        event.occurred_at,
        event.published_at,
        cursor,
        event.trace_context,
    )
