"""Schema migrations (Alembic), run on a synchronous connection for either backend."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from .factory import migration_lock
from .urls import sync_url

if TYPE_CHECKING:
    from webhook_grpc.encryption import SecretBox

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: Connection, box: SecretBox | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    # 0005_secrets_at_rest seals plain-text secrets with it.
    config.attributes["secret_box"] = box
    return config


def upgrade(database_url: str, revision: str = "head", box: SecretBox | None = None) -> None:
    """Bring the database at `database_url` up to `revision` (idempotent); `box` seals what a
    migration finds in plain text."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            migration_lock(database_url)(connection)
            command.upgrade(_config(connection, box), revision)
    finally:
        engine.dispose()


def revision(database_url: str, message: str) -> None:
    """Autogenerate a new revision from the table models (for developers)."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            command.revision(_config(connection), message=message, autogenerate=True)
    finally:
        engine.dispose()


def downgrade(database_url: str, revision: str, box: SecretBox | None = None) -> None:
    """Take the database at `database_url` back to `revision` (for tests and operators)."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            command.downgrade(_config(connection, box), revision)
    finally:
        engine.dispose()
