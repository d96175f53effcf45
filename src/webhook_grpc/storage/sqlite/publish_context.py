"""What publishing reads before it writes (the registered types with their field rules, the
active subscriptions of the tenants), kept in memory between changes to those tables.

Every publish read them in a read transaction of its own: a third of the statements of a
publish on SQLite, beside writes that are one SAVEPOINT in a group commit. One process uses a
SQLite database (storage/process_lock.py), so this process sees every change as it is written:
temporary triggers on the three tables call back into the process, on the connection that
writes (installed on each connection before its first write transaction). Storages of one
process on one file (tests run several apps on one) share one cache (`shared_cache`).

A changed row makes the cache forget everything, and so does the end of the transaction that
changed it (its connection back in the pool: committed or rolled back), since reads on other
connections meanwhile saw the rows before the change. A read keeps its answer only if neither
happened between the moment it began and the moment it ended. Nothing is answered from memory
while a change is in flight: its own transaction must see what it wrote."""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from webhook_grpc.domain.projection import Classification
from webhook_grpc.domain.subscriptions import Recipient

from ..ports import PublishContext
from ..urls import sqlite_file

CHANGED = "webhook_grpc_publish_context_changed"
"""The SQL function the triggers call."""

# Columns that publishing reads: a change to any other (delivery counters, pacing, secrets)
# leaves what it would read the same.
_WATCHED = {
    "subscriptions": "tenant_id, event_patterns, filter, status",
    "event_types": "type, entity",
    "entity_fields": "entity, path, classification",
}

TRIGGERS = [
    f"CREATE TEMP TRIGGER IF NOT EXISTS webhook_grpc_{table}_{name}"
    f" AFTER {operation} ON main.{table} BEGIN SELECT {CHANGED}(); END"
    for table, columns in _WATCHED.items()
    for name, operation in (
        ("inserted", "INSERT"),
        ("deleted", "DELETE"),
        ("updated", f"UPDATE OF {columns}"),
    )
]

# Beyond these many tenants (or sets of types) the cache starts afresh.
MAX_ENTRIES = 10_000

_Types = tuple[set[str], dict[str, dict[str, Classification]]]


class PublishContextCache:
    """The answers, the changes in flight by connection, and a generation that every change
    and every end of a changing transaction moves on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._changing: set[int] = set()
        self._types: dict[frozenset[str], _Types] = {}
        self._recipients: dict[str, list[Recipient]] = {}

    def watch(self, connection: Any) -> None:
        """Let `connection` (a new DBAPI connection) report changes through its triggers."""
        key = id(connection)
        connection.create_function(CHANGED, 0, lambda: self._changed(key))

    def _changed(self, key: int) -> None:
        # On the connection's worker thread, inside the statement that changed a row.
        with self._lock:
            self._changing.add(key)
            self._generation += 1
            self._types.clear()
            self._recipients.clear()

    def settled(self, connection: Any) -> None:
        """`connection`'s transaction has ended (it is back in the pool, or closed)."""
        key = id(connection)
        with self._lock:
            if key in self._changing:
                self._changing.discard(key)
                self._generation += 1
                self._types.clear()
                self._recipients.clear()

    def generation(self) -> int:
        """The generation a read begins in."""
        with self._lock:
            return self._generation

    def get(self, event_types: set[str], tenant_ids: set[str]) -> PublishContext | None:
        with self._lock:
            # While a change is in flight, its own transaction must read what it wrote; what
            # the others read meanwhile (the rows before it) may be kept, for after it.
            if self._changing:
                return None
            types = self._types.get(frozenset(event_types))
            if types is None or not tenant_ids.issubset(self._recipients.keys()):
                return None
            known, schemas = types
            recipients = {tenant_id: self._recipients[tenant_id] for tenant_id in tenant_ids}
        return PublishContext(set(known), dict(schemas), recipients)

    def keep(
        self,
        began: int,
        event_types: set[str],
        context: PublishContext,
    ) -> None:
        """Keep what a read that began in generation `began` found, if nothing changed since."""
        with self._lock:
            if began != self._generation:
                return
            if len(self._types) >= MAX_ENTRIES:
                self._types.clear()
            if len(self._recipients) + len(context.recipients) > MAX_ENTRIES:
                self._recipients.clear()
            self._types[frozenset(event_types)] = (set(context.known_types), context.schemas)
            self._recipients.update(context.recipients)


_by_file: weakref.WeakValueDictionary[Path, PublishContextCache] = weakref.WeakValueDictionary()
_guard = threading.Lock()


def shared_cache(url: URL) -> PublishContextCache:
    """The cache of every storage of this process on the database at `url` (one of its own
    for an in-memory database)."""
    database = sqlite_file(url.render_as_string(hide_password=False))
    if database is None:
        return PublishContextCache()
    with _guard:
        cache = _by_file.get(database)
        if cache is None:
            cache = _by_file[database] = PublishContextCache()
        return cache


def install_triggers(connection: sqlite3.Connection | Any, statements: Iterable[str]) -> bool:
    """Create the triggers on `connection` (outside a transaction); False if the tables are
    not there yet (a database before its migrations)."""
    try:
        for statement in statements:
            connection.execute(statement)
    except sqlite3.OperationalError:
        return False
    return True
