"""What every client command shares: the connection options, running on a `WebhooksClient`, and
turning failures into one clear line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from webhook_grpc_client import WebhooksClient

from . import event_loop

DEFAULT_TARGET = "127.0.0.1:50051"
TARGET_ENV = "WEBHOOK_GRPC_TARGET"
TOKEN_ENV = "WEBHOOK_GRPC_TOKEN"
CONNECT_TIMEOUT = 5.0
# How long, after Ctrl-C or the end of a command, closing the channel may take.
CLOSE_MARGIN = 2.0

# Exit codes (README "Command line"): the server refused or failed the call; bad input on the
# command line (like argparse); the server could not be reached. Ctrl-C is 130.
FAILED = 1
USAGE = 2
UNREACHABLE = 3
INTERRUPTED = 130

Command = Callable[[WebhooksClient, argparse.Namespace], Awaitable[int]]


class CommandError(Exception):
    """A failure to report in one line; `code` is the exit status."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


def options() -> argparse.ArgumentParser:
    """The options of every client command (an argparse parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument(
        "--target",
        default=os.environ.get(TARGET_ENV) or DEFAULT_TARGET,
        help=f"server address host:port (default: ${TARGET_ENV}, else {DEFAULT_TARGET})",
    )
    group.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"bearer token (default: ${TOKEN_ENV}); none for an open development server",
    )
    group.add_argument(
        "--tenant",
        default="",
        help="tenant id; may be left out with a tenant token (its own tenant)",
    )
    group.add_argument("--json", action="store_true", help="machine-readable JSON output")
    return common


def runner(command: Command) -> Callable[[argparse.Namespace], int]:
    """Wrap an async command: connect, run it, report failures; returns the exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return event_loop.run(
                _connected(command, args), margin=CLOSE_MARGIN, interrupt_on=(signal.SIGINT,)
            )
        except CommandError as error:
            print(f"webhook-grpc {args.command}: {error}", file=sys.stderr)
            return error.code
        except (event_loop.Interrupted, KeyboardInterrupt):
            return INTERRUPTED
        except BrokenPipeError:
            # The reader went away (`webhook-grpc feed tail | head`): stop quietly, and keep the
            # interpreter from complaining when it flushes stdout on exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0

    return run


def require_tenant(args: argparse.Namespace) -> None:
    """Checked before any call: with no tenant token there is no tenant but --tenant."""
    if not args.tenant and not args.token:
        raise CommandError(f"--tenant is required (or a tenant token: --token or ${TOKEN_ENV})")


async def _connected(command: Command, args: argparse.Namespace) -> int:
    require_tenant(args)
    async with WebhooksClient(args.target, args.token) as client:
        try:
            return await command(client, args)
        except grpc.aio.AioRpcError as error:
            if _is_unreachable(error, client):
                raise unreachable(client.target, _reason(error)) from None
            raise CommandError(explain(error), FAILED) from None


def _is_unreachable(error: grpc.aio.AioRpcError, client: WebhooksClient) -> bool:
    # The connection itself failed (the server answers UNAVAILABLE on a ready channel when its
    # database is down).
    return bool(
        error.code() == grpc.StatusCode.UNAVAILABLE
        and client.channel.get_state() != grpc.ChannelConnectivity.READY
    )


def _reason(error: grpc.aio.AioRpcError) -> str:
    # gRPC's text is "failed to connect to all addresses; last error: UNKNOWN: ipv4:…: Failed to
    # connect to remote host: Connection refused": the last part says why.
    return (error.details() or "unavailable").rsplit(": ", 1)[-1]


async def ensure_reachable(client: WebhooksClient) -> None:
    """Fail fast when nothing answers (before a stream that would otherwise keep retrying)."""
    try:
        await asyncio.wait_for(client.channel.channel_ready(), CONNECT_TIMEOUT)
    except TimeoutError:
        raise unreachable(client.target, f"no connection within {CONNECT_TIMEOUT:g}s") from None


def unreachable(target: str, reason: str) -> CommandError:
    """The one report of a server that cannot be reached, whichever command found out."""
    return CommandError(
        f"cannot reach {target}: {reason} (is `webhook-grpc serve` running there? "
        f"see --target or ${TARGET_ENV})",
        UNREACHABLE,
    )


def explain(error: grpc.aio.AioRpcError) -> str:
    """One line for a failed call: the field violations of INVALID_ARGUMENT, a hint otherwise."""
    code = error.code()
    details = error.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations = field_violations(error)
        if violations:
            return "invalid argument: " + "; ".join(f"{f}: {why}" for f, why in violations)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"unauthenticated: {details} (pass --token or set {TOKEN_ENV})"
    return f"{code.name.lower().replace('_', ' ')}: {details}"


def field_violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of a google.rpc.BadRequest detail, if any."""
    status = rpc_status.from_call(error)
    if status is None:
        return []
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [(v.field, v.description) for v in bad.field_violations]
    return found
