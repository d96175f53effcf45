"""`serve`, `dispatcher` and `migrate`: run the service, a dispatcher, or migrations."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webhook_grpc import logs
from webhook_grpc.config import ConfigError, Settings, load_settings

from . import event_loop

if TYPE_CHECKING:
    from webhook_grpc.app import App

log = logging.getLogger("webhook_grpc")

# How long, beyond the grace period, shutdown waits for the rest before it gives up on it.
SHUTDOWN_MARGIN = 5.0

# `--dev`: what a laptop needs to deliver to a receiver on itself. Never the default.
DEV_PROFILE: dict[str, object] = {"allow_http_targets": True, "allow_private_targets": True}
DEV_WARNING = (
    "DEVELOPMENT PROFILE (--dev): plain http:// and loopback/private endpoint URLs are allowed "
    "(allow_http_targets, allow_private_targets); never run this in production"
)


def add_commands(commands: Any) -> None:
    """Add the server-side commands to the `webhook-grpc` subparsers."""

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(
            name, help=help_text, description=help_text
        )
        sub.add_argument("--config", type=Path, help="TOML configuration file")
        sub.add_argument("--database-url", help="overrides database_url")
        sub.set_defaults(run=run)
        return sub

    serve = with_config("serve", "run the gRPC server with the dispatcher (SQLite by default)")
    serve.add_argument("--listen", help="overrides listen, e.g. 127.0.0.1:50051")
    serve.add_argument(
        "--http-listen", help="overrides http_listen (REST/JSON), e.g. 127.0.0.1:8080; '' disables"
    )
    serve.add_argument(
        "--workers",
        type=int,
        help="overrides workers: server processes sharing the ports (PostgreSQL only)",
    )
    dispatcher = with_config("dispatcher", "run only a dispatcher (scale-out worker on PostgreSQL)")
    for sub in (serve, dispatcher):
        sub.add_argument(
            "--dev",
            action="store_true",
            help="development profile: allow http:// and loopback/private endpoints "
            "(a receiver on this machine); never in production",
        )
    with_config("migrate", "apply database migrations and exit")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        key: value
        for key, value in {
            "database_url": args.database_url,
            "listen": getattr(args, "listen", None),
            "http_listen": getattr(args, "http_listen", None),
            "workers": getattr(args, "workers", None),
        }.items()
        if value is not None
    }
    if getattr(args, "dev", False):
        overrides |= DEV_PROFILE
    return load_settings(args.config, overrides=overrides)


def run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except (ConfigError, OSError) as error:
        # Logging is not configured yet: its format is one of the settings.
        print(f"webhook-grpc: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.server.log_level, settings.server.log_format)
    if getattr(args, "dev", False):
        log.warning(DEV_WARNING)
    try:
        return _command(args, settings)
    except Exception as error:
        message, code = fatal(error)
        log.error("%s", message)
        return code


def _command(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here so that the client commands start without loading the whole service.
    from webhook_grpc.app import App, Roles
    from webhook_grpc.encryption import resolve_box
    from webhook_grpc.storage import migrate, process_lock

    if args.command == "migrate":
        # Not under a running server's feet on SQLite (PostgreSQL serialises migrations itself).
        lock = process_lock.acquire(settings.database.database_url, "migrate")
        try:
            # 0005_secrets_at_rest encrypts plain-text secrets with the first key.
            box = resolve_box(settings.secrets.secret_key, settings.database.database_url)
            migrate.upgrade(settings.database.database_url, "head", box)
        finally:
            lock.release()
        log.info("database is up to date")
        return 0
    if args.command == "serve" and settings.server.workers > 1:
        from . import workers

        return workers.run_workers(settings, SHUTDOWN_MARGIN)
    roles = Roles() if args.command == "serve" else Roles(api=False, retention=False)
    event_loop.run(serve(App(settings, roles)), margin=SHUTDOWN_MARGIN)
    return 0


def fatal(error: Exception) -> tuple[str, int]:
    """One line and the exit code for an error that stops a server command; other errors are
    bugs and keep their traceback."""
    from sqlalchemy.exc import OperationalError

    from webhook_grpc.app import StartupError
    from webhook_grpc.encryption import SecretKeyError
    from webhook_grpc.storage.process_lock import DatabaseInUse

    if isinstance(error, StartupError | DatabaseInUse | SecretKeyError):
        return str(error), 2
    if isinstance(error, OperationalError):
        reason = str(error.orig or error).strip().splitlines()[0]
        return f"cannot use the database: {reason}", 3
    raise error


async def serve(app: App) -> None:
    """Run `app` until SIGTERM or SIGINT, then stop it within its grace period."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    await stop.wait()
    log.info("shutting down: finishing in-flight work")
    grace = app.settings.delivery.delivery_timeout.total_seconds()
    try:
        async with asyncio.timeout(grace + SHUTDOWN_MARGIN):
            await app.stop(grace=grace)
    except TimeoutError:
        log.error("shutdown took longer than %.0fs; stopping what is left", grace + SHUTDOWN_MARGIN)
