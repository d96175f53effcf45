"""The `webhook-grpc` command.

Server side: ``serve``, ``dispatcher``, ``migrate`` (`server`), ``secrets`` (`secrets`).
Client side, for humans and scripts, built on the Python SDK (`webhook_grpc_client`):
``publish``, ``subscriptions``, ``feed tail`` (`client_commands`), ``listen`` (`listen`) and
``portal-link`` (`portal_link`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from webhook_grpc import __version__, logs

logs.quiet_grpc_core()  # before the commands' imports load grpc

from . import client_commands, listen, portal_link, secrets, server  # noqa: E402


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="webhook-grpc",
        description="Domain events as signed webhooks and a gRPC feed.",
    )
    root.add_argument("--version", action="version", version=f"webhook-grpc {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server.add_commands(commands)
    client_commands.add_commands(commands)
    listen.add_command(commands)
    secrets.add_command(commands)
    portal_link.add_command(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code
