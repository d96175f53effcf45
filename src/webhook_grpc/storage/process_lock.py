"""One process per SQLite database file.

SQLite has one writer at a time and no cross-process wake-ups, so a second `serve` or a
`dispatcher` beside `serve` on the same file would run, contend for the write lock and miss
the other's notifications. Instead it stops at start: each process holds an exclusive
advisory lock (`flock`) on `<database>.lock` for its whole life, and the file names the
holder. The kernel drops the lock when the process dies, however it dies, so a stale file
never blocks a restart. The file is left in place: removing it would let two processes lock
two different files of the same name.

Apps of one process (tests run several on one file) share the lock. PostgreSQL (several
processes are its point) and in-memory SQLite need none."""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .urls import sqlite_file


class DatabaseInUse(Exception):
    """Another process holds the database file."""


@dataclass
class _Held:
    fd: int
    users: int


_held: dict[Path, _Held] = {}
_guard = threading.Lock()


def lock_path(database_url: str) -> Path | None:
    """The lock file of a SQLite database file; None for PostgreSQL and in-memory SQLite."""
    database = sqlite_file(database_url)
    return None if database is None else Path(f"{database}.lock")


class ProcessLock:
    """Held from `acquire` until `release` (a no-op where no lock is needed)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def release(self) -> None:
        if self.path is None:
            return
        with _guard:
            held = _held[self.path]
            held.users -= 1
            if held.users == 0:
                del _held[self.path]
                os.close(held.fd)  # closing the only descriptor releases the flock
        self.path = None


def acquire(database_url: str, holder: str) -> ProcessLock:
    """Take the database file for this process; `holder` says what runs (e.g. "serve").

    Raises DatabaseInUse, naming the file and the process holding it, if another has it."""
    path = lock_path(database_url)
    if path is None:
        return ProcessLock(None)
    with _guard:
        if path in _held:
            _held[path].users += 1
            return ProcessLock(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            running = _read_holder(fd)
            os.close(fd)
            database = str(path)[: -len(".lock")]
            raise DatabaseInUse(
                f"the SQLite database {database} is in use by another process "
                f"({running or 'unknown'}); SQLite serves one process: stop that one first, "
                f"or use PostgreSQL for several processes"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: webhook-grpc {holder}\n".encode(), 0)
        _held[path] = _Held(fd, 1)
        return ProcessLock(path)


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""
