"""What every engine's connections share: connection failures reported as StorageUnavailable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from webhook_grpc.domain.errors import StorageUnavailable

# The execution option that marks a read-only transaction (SQLite then skips the write lock).
READ_ONLY = "webhook_grpc_read_only"


@asynccontextmanager
async def unavailable_on_failure() -> AsyncIterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError) as error:
        # Lost connections, refused connections, timeouts and SQLite lock contention:
        # all retryable by the client.
        raise StorageUnavailable(str(error.orig or error)) from error
    except PoolTimeout as error:
        # Every pooled connection is busy, typically each stuck connecting to a database
        # that does not answer: as retryable as the failures that cause it.
        raise StorageUnavailable(str(error)) from error
    except DBAPIError as error:
        if error.connection_invalidated:
            raise StorageUnavailable(str(error.orig or error)) from error
        raise
    except OSError as error:
        raise StorageUnavailable(str(error)) from error
