"""`publish`, `subscriptions …` and `feed tail`: the client commands, on the Python SDK."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from webhook_grpc_client import RetryPolicy, WebhooksClient

from webhook_grpc.domain.durations import parse_duration

from . import output
from .connection import CommandError, ensure_reachable, options, runner

# `feed tail` follows like `tail -f`: it waits out a server restart (about 2-5 minutes of
# reconnecting) before giving up.
TAIL_RETRY = RetryPolicy(max_attempts=60, initial_delay=0.2, max_delay=5.0)


def add_commands(commands: Any) -> None:
    """Add `publish`, `subscriptions` and `feed` to the `webhook-grpc` subparsers."""
    common = options()
    _add_publish(commands, common)
    _add_subscriptions(commands, common)
    _add_feed(commands, common)


# publish


def _add_publish(commands: Any, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser(
        "publish",
        parents=[common],
        help="publish an event",
        description="Publish one event for --tenant (a publisher or admin token).",
    )
    sub.add_argument("type", help="a registered event type, e.g. product.price_changed")
    sub.add_argument("entity_id", help="the id of the entity that changed")
    sub.add_argument(
        "--data",
        default="{}",
        help="the entity after the change: a JSON object, @FILE, or - for stdin",
    )
    sub.add_argument("--previous", help="prior values of the changed fields (JSON object)")
    sub.add_argument("--idempotency-key", help="retries with the same key publish once")
    sub.add_argument("--occurred-at", help="ISO 8601 time of the change (default: now)")
    sub.set_defaults(run=runner(_publish))


def _json_object(text: str, flag: str) -> dict[str, Any]:
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as error:
            raise CommandError(f"{flag}: cannot read {text[1:]}: {error.strerror}") from None
    try:
        value: object = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"{flag} is not valid JSON: {error}") from None
    except RecursionError:
        raise _too_deep(flag) from None
    if not isinstance(value, dict):
        raise CommandError(f"{flag} must be a JSON object, got {type(value).__name__}")
    if _nesting(value) > MAX_JSON_NESTING:
        raise _too_deep(flag)
    return value


def _too_deep(flag: str) -> CommandError:
    return CommandError(
        f"{flag} is nested too deeply: at most {MAX_JSON_NESTING} levels of objects and arrays"
    )


# Each level of a google.protobuf.Struct is up to three messages deep (Struct, its map entry,
# Value), and protobuf refuses messages nested over 100 deep: past this the client could not
# even build the request.
MAX_JSON_NESTING: Final = 32


def _nesting(value: Any) -> int:
    """How many objects and arrays deep `value` is (iteratively: the value may be deep)."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        children = node.values() if isinstance(node, dict) else node
        deepest = max(deepest, depth)
        pending += [(c, depth + 1) for c in children if isinstance(c, dict | list)]
    return deepest


def _time(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{flag} is not an ISO 8601 time: {text!r}") from None


async def _publish(client: WebhooksClient, args: argparse.Namespace) -> int:
    if not args.tenant:
        raise CommandError("--tenant is required to publish")
    data = _json_object(args.data, "--data")
    previous = _json_object(args.previous, "--previous") if args.previous is not None else None
    event = await client.publish(
        args.tenant,
        args.type,
        args.entity_id,
        data,
        previous=previous,
        occurred_at=_time(args.occurred_at, "--occurred-at"),
        idempotency_key=args.idempotency_key,
    )
    if args.json:
        output.emit_json(output.message_json(event))
    else:
        output.emit_fields(output.event_fields(event))
    return 0


# subscriptions


def _add_subscriptions(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser(
        "subscriptions",
        help="manage webhook subscriptions",
        description="Manage the webhook endpoints of --tenant.",
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create", parents=[common], help="subscribe an endpoint; prints its secret once"
    )
    create.add_argument("url", help="the endpoint, https://…")
    create.add_argument(
        "-p",
        "--pattern",
        dest="patterns",
        action="append",
        required=True,
        help="event pattern: an exact type, entity.* or * (repeatable)",
    )
    create.add_argument("--description", default="", help="free text shown in listings")
    create.add_argument(
        "--payload-mode",
        choices=("full", "thin"),
        default="full",
        help="full: deliveries carry the event's data; thin: only the entity id (default: full)",
    )
    create.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label kept with the subscription (repeatable)",
    )
    create.add_argument("--secret", help="whsec_… to use (default: generated)")
    create.add_argument(
        "--signing-algorithm",
        choices=("hmac-sha256", "ed25519"),
        default="hmac-sha256",
        help="ed25519: webhook-signature is signed with a key pair the service keeps; verify "
        "with the public key it shows (whpk_…); the secret still keys X-Webhook-Signature "
        "(default: hmac-sha256)",
    )
    create.add_argument(
        "--filter",
        default="",
        help="a CEL expression over the event; only matches are delivered, e.g. "
        "'type == \"product.price_changed\" && double(data.selling_price) > 100.0'",
    )
    create.add_argument(
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header sent with every delivery (repeatable, up to 10)",
    )
    create.add_argument(
        "--fifo",
        action="store_true",
        help="deliver one at a time in feed order; a failing delivery holds the ones behind it",
    )
    create.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        metavar="PER_SECOND",
        help="at most this many attempts a second to the endpoint, over all dispatchers "
        "(up to 1000; 0, the default: no limit)",
    )
    create.set_defaults(run=runner(_create))

    replay = actions.add_parser(
        "replay",
        parents=[common],
        help="queue deliveries of stored events it has not received",
        description="Queue deliveries of the stored events of a window that match the "
        "subscription and were not delivered to it: an event whose delivery succeeded or is "
        "still pending is skipped (a second run queues nothing new); one whose deliveries "
        "failed, as in an outage, is sent again.",
    )
    replay.add_argument("id", help="sub_…")
    replay.add_argument(
        "--since",
        help="how far back, e.g. 2h or 30m, or an ISO 8601 time (default: the oldest retained)",
    )
    replay.add_argument(
        "--until", help="ISO 8601 time or a duration ago (default: up to the latest event)"
    )
    replay.add_argument(
        "-p",
        "--pattern",
        dest="patterns",
        action="append",
        default=[],
        help="only events of this pattern as well (repeatable)",
    )
    replay.set_defaults(run=runner(_replay))

    listing = actions.add_parser("list", parents=[common], help="list subscriptions")
    listing.add_argument(
        "--status", choices=("active", "disabled"), help="only subscriptions in this status"
    )
    listing.set_defaults(run=runner(_list))

    for name, help_text in (
        ("get", "show one subscription"),
        ("disable", "stop deliveries (events stay in the feed)"),
        ("activate", "resume deliveries and forget past failures"),
        ("delete", "delete it and cancel its pending deliveries"),
    ):
        action = actions.add_parser(name, parents=[common], help=help_text)
        action.add_argument("id", help="sub_…")
        action.set_defaults(run=runner(_one))

    rotate = actions.add_parser(
        "rotate-secret", parents=[common], help="replace the secret; prints the new one once"
    )
    rotate.add_argument("id", help="sub_…")
    rotate.add_argument("--secret", help="whsec_… to use (default: generated)")
    rotate.add_argument(
        "--grace",
        help="how long the old secret keeps signing, e.g. 24h, 30m, 0s (default: the server's)",
    )
    rotate.set_defaults(run=runner(_rotate))


def _metadata(pairs: list[str]) -> dict[str, str]:
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--metadata expects KEY=VALUE, got {pair!r}")
        metadata[key] = value
    return metadata


def _headers(lines: list[str]) -> dict[str, str]:
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise CommandError(f"--header expects 'NAME: VALUE', got {line!r}")
        headers[name.strip()] = value.strip()
    return headers


def _moment(text: str | None, flag: str) -> datetime | None:
    """An ISO 8601 time, or a duration meaning that long ago (`2h`)."""
    if text is None:
        return None
    try:
        return datetime.now(UTC) - parse_duration(text, "h", flag)
    except ValueError:
        pass
    moment = _time(text, flag)
    assert moment is not None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _create(client: WebhooksClient, args: argparse.Namespace) -> int:
    created = await client.subscriptions.create(
        args.url,
        args.patterns,
        tenant_id=args.tenant,
        description=args.description,
        payload_mode=args.payload_mode,
        metadata=_metadata(args.metadata),
        secret=args.secret,
        signing_algorithm=args.signing_algorithm,
        filter=args.filter,
        headers=_headers(args.headers),
        ordering="fifo" if args.fifo else "unordered",
        rate_limit_per_second=args.rate_limit,
    )
    if args.json:
        output.emit_json(
            {"subscription": output.message_json(created.subscription), "secret": created.secret}
        )
    else:
        output.emit_fields(
            [*output.subscription_fields(created.subscription), ("secret", created.secret)]
        )
        print("(the secret is shown only now: store it to verify deliveries)", file=sys.stderr)
    return 0


async def _replay(client: WebhooksClient, args: argparse.Namespace) -> int:
    since = _moment(args.since, "--since")
    until = _moment(args.until, "--until")
    total = 0
    while True:
        replayed = await client.subscriptions.replay(
            args.id, tenant_id=args.tenant, since=since, until=until, event_patterns=args.patterns
        )
        total += replayed.queued
        if not replayed.has_more:
            break
        since = replayed.next_since.ToDatetime(tzinfo=UTC)
    if args.json:
        output.emit_json({"queued": total})
    else:
        print(f"queued {total}", flush=True)
    return 0


async def _list(client: WebhooksClient, args: argparse.Namespace) -> int:
    found = await client.subscriptions.list(tenant_id=args.tenant, status=args.status)
    if args.json:
        output.emit_json({"subscriptions": [output.message_json(s) for s in found]})
    elif found:
        output.emit_table(output.SUBSCRIPTION_HEADERS, output.subscription_rows(found))
    else:
        print("no subscriptions", file=sys.stderr)
    return 0


async def _one(client: WebhooksClient, args: argparse.Namespace) -> int:
    subscriptions = client.subscriptions
    if args.action == "delete":
        await subscriptions.delete(args.id, tenant_id=args.tenant)
        if args.json:
            output.emit_json({"deleted": args.id})
        else:
            print(f"deleted {args.id}", flush=True)
        return 0
    method = {
        "get": subscriptions.get,
        "disable": subscriptions.disable,
        "activate": subscriptions.activate,
    }[args.action]
    subscription = await method(args.id, tenant_id=args.tenant)
    if args.json:
        output.emit_json(output.message_json(subscription))
    else:
        output.emit_fields(output.subscription_fields(subscription))
    return 0


async def _rotate(client: WebhooksClient, args: argparse.Namespace) -> int:
    grace: timedelta | None = None
    if args.grace is not None:
        try:
            grace = parse_duration(args.grace, "h", "--grace")
        except ValueError as error:
            raise CommandError(str(error)) from None
    rotated = await client.subscriptions.rotate_secret(
        args.id, tenant_id=args.tenant, secret=args.secret, grace_period=grace
    )
    if args.json:
        output.emit_json(
            {"subscription": output.message_json(rotated.subscription), "secret": rotated.secret}
        )
    else:
        output.emit_fields(
            [*output.subscription_fields(rotated.subscription), ("secret", rotated.secret)]
        )
    return 0


# feed


def start_options(parser: argparse.ArgumentParser) -> Any:
    """--after / --from-latest and the filters, shared by `feed tail` and `listen`; returns the
    group of start options."""
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--after", default="", metavar="CURSOR", help="start after this cursor")
    start.add_argument(
        "--from-latest", action="store_true", help="only events published from now on"
    )
    parser.add_argument(
        "-p",
        "--pattern",
        dest="patterns",
        action="append",
        default=[],
        help="only these types: an exact type, entity.* or * (repeatable)",
    )
    parser.add_argument("--entity", default="", metavar="ENTITY_ID", help="only this entity")
    return start


def _add_feed(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser(
        "feed", help="read the event feed", description="Read the event feed of --tenant."
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    tail = actions.add_parser(
        "tail",
        parents=[common],
        help="print events and follow new ones, like tail -f",
        description="Print the backlog (from the earliest retained event, or after --after) "
        "and follow new events; reconnects from the last cursor when the stream breaks.",
    )
    start_options(tail)
    tail.set_defaults(run=runner(_tail))


async def _tail(client: WebhooksClient, args: argparse.Namespace) -> int:
    await ensure_reachable(client)
    feed = client.feed(
        args.tenant,
        after_cursor=args.after,
        event_patterns=args.patterns,
        entity_id=args.entity,
        from_latest=args.from_latest,
        retry=TAIL_RETRY,
    )
    async with feed:
        async for event in feed:
            if args.json:
                output.emit_json(output.message_json(event))
            else:
                print(output.event_line(event), flush=True)
    return 0
