"""`portal-link`: print a one-time link to a tenant's webhook portal (SPEC §10)."""

from __future__ import annotations

import argparse
from typing import Any

from webhook_grpc_client import WebhooksClient

from webhook_grpc._gen.webhooks.v1 import portal_pb2, portal_pb2_grpc
from webhook_grpc.domain.durations import parse_duration

from . import output
from .connection import CommandError, options, runner


def add_command(commands: Any) -> None:
    sub = commands.add_parser(
        "portal-link",
        parents=[options()],
        help="print a one-time link to a tenant's webhook portal",
        description=(
            "Print a one-time link that opens the webhook portal for --tenant "
            "(an admin token, or a publisher token acting for the tenant)."
        ),
    )
    sub.add_argument(
        "--ttl", help='how long the link and its session last, e.g. "30m" (default 1h, max 24h)'
    )
    sub.set_defaults(run=runner(_portal_link))


async def _portal_link(client: WebhooksClient, args: argparse.Namespace) -> int:
    if not args.tenant:
        raise CommandError("--tenant is required")
    request = portal_pb2.CreatePortalSessionRequest(tenant_id=args.tenant)
    if args.ttl is not None:
        try:
            ttl = parse_duration(args.ttl, "s", "--ttl")
        except ValueError as error:
            raise CommandError(str(error)) from None
        request.ttl.FromTimedelta(ttl)
    stub = portal_pb2_grpc.PortalServiceStub(client.channel)
    response = await stub.CreatePortalSession(request, metadata=client.metadata)
    if args.json:
        output.emit_json(output.message_json(response))
    else:
        print(response.url)
    return 0
