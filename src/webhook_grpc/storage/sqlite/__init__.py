"""The SQLite driver: Core statements in write transactions that hold the database's write lock
(BEGIN IMMEDIATE), so writers are serialised and rowid order is commit order."""

from .storage import open_sqlite

__all__ = ["open_sqlite"]
