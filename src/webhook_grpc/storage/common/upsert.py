"""INSERT ... ON CONFLICT, which each engine's dialect builds: a driver hands its own in."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

Insert = postgresql.Insert | sqlite.Insert
InsertOf = Callable[[Table], Insert]
