"""`listen --forward-to URL`: stream a tenant's feed into a local endpoint, signed (development).

Each event is POSTed once, with the body and headers a real delivery has (SPEC §4), built and
signed by the same code as the dispatcher's, so an endpoint under development can be exercised
without a public URL. There are no retries: the result of each POST is printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import urlsplit

from webhook_grpc_client import Event, WebhooksClient, v1

from webhook_grpc.api.convert import struct_to_dict
from webhook_grpc.dispatch.transport import HttpOutcome, HttpTransport
from webhook_grpc.domain import models
from webhook_grpc.domain.errors import InvalidArgument
from webhook_grpc.domain.payload import encode_body
from webhook_grpc.domain.signing import delivery_headers, generate_secret, validate_secret

from . import output
from .client_commands import TAIL_RETRY, start_options
from .connection import CONNECT_TIMEOUT, CommandError, ensure_reachable, options, runner

TIMEOUT = timedelta(seconds=10)


def add_command(commands: Any) -> None:
    sub = commands.add_parser(
        "listen",
        parents=[options()],
        help="forward the feed to a local endpoint as signed webhooks (development)",
        description="Stream the feed of --tenant (only new events, unless --after or "
        "--from-start is given) and POST "
        "each event to --forward-to with the body and headers of a real delivery, signed with "
        "--secret. Prints the outcome of every POST; does not retry.",
    )
    sub.add_argument(
        "--forward-to", required=True, metavar="URL", help="e.g. http://localhost:8000/hooks"
    )
    sub.add_argument(
        "--secret",
        help="whsec_… to sign with, as your endpoint expects (default: a new one, printed)",
    )
    sub.add_argument("--thin", action="store_true", help="THIN payloads (data carries the id)")
    start = start_options(sub)
    start.add_argument(
        "--from-start", action="store_true", help="replay from the earliest retained event"
    )
    sub.set_defaults(run=runner(_listen))


def _domain_event(event: Event) -> models.Event:
    return models.Event(
        id=event.id,
        tenant_id=event.tenant_id,
        type=event.type,
        entity_id=event.entity_id,
        data=struct_to_dict(event.data),
        previous=struct_to_dict(event.previous) if event.HasField("previous") else None,
        occurred_at=event.occurred_at.ToDatetime(tzinfo=UTC),
        published_at=event.published_at.ToDatetime(tzinfo=UTC),
        cursor=event.cursor,
    )


def delivery(event: Event, secret: str, mode: models.PayloadMode) -> tuple[bytes, dict[str, str]]:
    """The body and headers the dispatcher would send for `event`, signed now."""
    body = encode_body(_domain_event(event), mode)
    timestamp = int(time.time())
    return body, delivery_headers([secret], event.id, event.type, timestamp, body)


def _check(args: argparse.Namespace) -> str:
    url = urlsplit(args.forward_to)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise CommandError(
            f"--forward-to must be an http:// or https:// URL, got {args.forward_to!r}"
        )
    if args.secret is None:
        return generate_secret()
    try:
        validate_secret(args.secret, "--secret")
    except InvalidArgument as error:
        raise CommandError(f"--secret: {error.description}") from None
    return str(args.secret)


def _report(event: Event, url: str, outcome: HttpOutcome, as_json: bool) -> None:
    millis = round(outcome.latency.total_seconds() * 1000)
    if as_json:
        output.emit_json(
            {
                "event_id": event.id,
                "type": event.type,
                "url": url,
                "status_code": outcome.status_code,
                "ok": outcome.succeeded,
                "error": outcome.error_message or None,
                "latency_ms": millis,
            }
        )
        return
    result = str(outcome.status_code) if outcome.status_code else "failed"
    problem = f"  {outcome.error_message}" if outcome.error and not outcome.status_code else ""
    print(f"{result}  {event.id}  {event.type}  -> {url}  ({millis} ms){problem}", flush=True)


async def _may_read_feed(client: WebhooksClient, tenant: str) -> None:
    """One page of one event: a token or tenant the server refuses fails here, before the banner
    and the secret are printed (the stream itself would fail only after them)."""
    stub = v1.feed_pb2_grpc.FeedServiceStub(client.channel)
    request = v1.feed_pb2.ListEventsRequest(tenant_id=tenant, page_size=1)
    await stub.ListEvents(request, metadata=client.metadata, timeout=CONNECT_TIMEOUT)


async def _listen(client: WebhooksClient, args: argparse.Namespace) -> int:
    secret = _check(args)
    mode = models.PayloadMode.THIN if args.thin else models.PayloadMode.FULL
    await ensure_reachable(client)
    await _may_read_feed(client, args.tenant)
    shown = "" if args.secret else f" (signing with {secret})"
    print(f"forwarding events to {args.forward_to}{shown}; Ctrl-C to stop", file=sys.stderr)
    from_latest = not (args.after or args.from_start)
    transport = HttpTransport(TIMEOUT, allow_private=True, max_connections=4)
    await transport.start()
    try:
        feed = client.feed(
            args.tenant,
            after_cursor=args.after,
            event_patterns=args.patterns,
            entity_id=args.entity,
            from_latest=from_latest,
            retry=TAIL_RETRY,
        )
        async with feed:
            async for event in feed:
                body, headers = delivery(event, secret, mode)
                outcome = await transport.post(args.forward_to, body, headers)
                _report(event, args.forward_to, outcome, args.json)
    finally:
        await transport.close()
    return 0
