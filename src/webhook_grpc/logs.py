"""Logging set-up: one JSON object per line (or plain text for a terminal)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Attributes of every LogRecord; anything else was passed with `extra=` and is logged as a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# Libraries that log SQL parameters at DEBUG: those parameters include subscription secrets.
PARAMETER_LOGGERS = ("aiosqlite", "sqlalchemy.engine", "psycopg")


def guard_secrets() -> None:
    """Keep loggers that would print query parameters (secrets) at WARNING, whatever the level."""
    for name in PARAMETER_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    guard_secrets()
