"""`serve`, `dispatcher` and `migrate`: run the service, a dispatcher, or migrations."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webhook_grpc import logs
from webhook_grpc.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from webhook_grpc.app import App

log = logging.getLogger("webhook_grpc")

# How long, beyond the grace period, shutdown waits for the rest before it gives up on it.
SHUTDOWN_MARGIN = 5.0


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
    with_config("dispatcher", "run only a dispatcher (scale-out worker on PostgreSQL)")
    with_config("migrate", "apply database migrations and exit")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        key: value
        for key, value in {
            "database_url": args.database_url,
            "listen": getattr(args, "listen", None),
            "http_listen": getattr(args, "http_listen", None),
        }.items()
        if value is not None
    }
    return load_settings(args.config, overrides=overrides)


def run(args: argparse.Namespace) -> int:
    # Imported here so that the client commands start without loading the whole service.
    from webhook_grpc.app import App, Roles, StartupError
    from webhook_grpc.storage import migrate, process_lock

    try:
        settings = _settings(args)
    except (ConfigError, OSError) as error:
        print(f"webhook-grpc: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.server.log_level, settings.server.log_format)
    if args.command == "migrate":
        # Not under a running server's feet on SQLite (PostgreSQL serialises migrations itself).
        try:
            lock = process_lock.acquire(settings.database.database_url, "migrate")
        except process_lock.DatabaseInUse as error:
            print(f"webhook-grpc: {error}", file=sys.stderr)
            return 2
        try:
            migrate.upgrade(settings.database.database_url)
        finally:
            lock.release()
        log.info("database is up to date")
        return 0
    roles = Roles() if args.command == "serve" else Roles(api=False, retention=False)
    try:
        _run_bounded(_run(App(settings, roles)), SHUTDOWN_MARGIN)
    except StartupError as error:
        print(f"webhook-grpc: {error}", file=sys.stderr)
        return 2
    return 0


async def _run(app: App) -> None:
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


def _run_bounded(main: Coroutine[Any, Any, None], margin: float) -> None:
    """asyncio.run, except that the clean-up cannot hang: tasks still running after `main` are
    cancelled and given `margin` seconds to end, then the loop closes without the ones that
    did not (asyncio.run would wait for them forever)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(_cancel_remaining(margin))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


async def _cancel_remaining(margin: float) -> None:
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=margin)
    if pending:
        log.error(
            "%d tasks did not end when cancelled; exiting without them: %s",
            len(pending),
            ", ".join(sorted(task.get_name() for task in pending)),
        )
