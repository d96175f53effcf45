"""Logging set-up: every line through one formatter, JSON (one object per line) for machines or
console text (time, level, logger, message, then the fields as key=value) for a terminal."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes of every LogRecord; anything else was passed with `extra=` and is logged as a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """What the record carries beyond the standard attributes (its `extra=` fields)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= fields(record)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ConsoleFormatter(logging.Formatter):
    """``23:41:05.073 WARNING webhook_grpc.dispatch: delivery attempt failed delivery_id=dlv_…``"""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        line = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}"
        extra = " ".join(
            f"{name}={_console_value(value)}" for name, value in fields(record).items()
        )
        if extra:
            line += " " + extra
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _console_value(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in "\"'=" for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


# Libraries that log SQL parameters at DEBUG: those parameters include subscription secrets.
PARAMETER_LOGGERS = ("aiosqlite", "sqlalchemy.engine", "psycopg")
# Library lines that say nothing about the service, and the level they are held at: "Using
# selector: EpollSelector", "[_cygrpc] Loaded running loop" once per RPC at DEBUG, alembic's
# "setup plugin …" at INFO on every start.
CHATTY_LOGGERS = {
    "asyncio": logging.INFO,
    "grpc._cython.cygrpc": logging.INFO,
    "alembic.runtime.plugins": logging.WARNING,
}

FORMATS = ("auto", "console", "json", "text")


def guard_secrets() -> None:
    """Keep loggers that would print query parameters (secrets) at WARNING, whatever the level."""
    for name in PARAMETER_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def quiet_grpc_core() -> None:
    """gRPC's C core writes its own lines straight to stderr, outside Python's logging ("I1129 …
    chttp2_transport.cc … Got goaway" each time a client goes away): keep it to errors unless
    the operator asked for more. Effective only before grpc is first imported."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def formatter(fmt: str, stream: TextIO) -> logging.Formatter:
    """The formatter for `fmt`; ``auto`` is console text on a terminal, JSON otherwise."""
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    return JsonFormatter() if fmt == "json" else ConsoleFormatter()


def configure(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Route every logger (ours, alembic, aiohttp, grpc, warnings) through one stderr handler."""
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter(fmt, out))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    for name, floor in CHATTY_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, root.level))
    guard_secrets()
