"""`secrets generate-key` and `secrets re-encrypt`: the keys that encrypt subscription secrets at
rest (README: Secrets at rest)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from webhook_grpc.config import ConfigError, Settings, load_settings


def add_command(commands: Any) -> None:
    """Add `secrets` to the `webhook-grpc` subparsers."""
    secrets = commands.add_parser(
        "secrets",
        help="encryption keys of subscription secrets at rest",
        description="Encryption keys of subscription secrets at rest.",
    )
    actions = secrets.add_subparsers(dest="action", required=True, metavar="ACTION")
    generate = actions.add_parser(
        "generate-key",
        help="print a new key for secret_keys",
        description="Print a new key (base64 of 32 random bytes) to put first in secret_keys.",
    )
    generate.set_defaults(run=_generate_key)
    reencrypt = actions.add_parser(
        "re-encrypt",
        help="encrypt every stored secret with the first of secret_keys",
        description=(
            "Encrypt every subscription secret again with the first of secret_keys, so older "
            "keys can be removed from secret_keys afterwards. Safe while the service runs."
        ),
    )
    reencrypt.add_argument("--config", type=Path, help="TOML configuration file")
    reencrypt.add_argument("--database-url", help="overrides database_url")
    reencrypt.set_defaults(run=_reencrypt)


def _generate_key(_args: argparse.Namespace) -> int:
    from webhook_grpc.encryption import generate_key

    print(generate_key())
    return 0


def _reencrypt(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config, overrides={"database_url": args.database_url})
    except (ConfigError, OSError) as error:
        print(f"webhook-grpc: {error}", file=sys.stderr)
        return 2
    return asyncio.run(_reencrypt_database(settings))


async def _reencrypt_database(settings: Settings) -> int:
    # Imported here so that the other commands start without loading the storage drivers.
    from webhook_grpc.encryption import SealedSecretError, SecretKeyError, resolve_box
    from webhook_grpc.encryption.reencrypt import reencrypt_all
    from webhook_grpc.storage.factory import open_storage

    database_url = settings.secrets.database_url
    try:
        box = resolve_box(settings.secrets.secret_keys, database_url)
    except SecretKeyError as error:
        print(f"webhook-grpc: {error}", file=sys.stderr)
        return 2
    storage = open_storage(database_url, pool_size=1)
    try:
        done = await reencrypt_all(storage, box)
    except SealedSecretError as error:
        print(f"webhook-grpc: {error}; nothing after it was changed", file=sys.stderr)
        return 2
    finally:
        await storage.dispose()
    print(
        f"re-encrypted {done.resealed} subscription(s) with key id {box.current_key_id}; "
        f"{done.current} already were; {done.changed_meanwhile} rotated meanwhile"
    )
    return 0
