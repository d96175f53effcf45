"""Property: whatever an entity contains, only allowlisted public/internal fields are ever stored,
delivered, served by the feed or logged (SPEC §2)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.factories import struct
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, start_server
from webhook_grpc._gen.webhooks.v1 import (
    events_pb2,
    events_pb2_grpc,
    feed_pb2,
    feed_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)
from webhook_grpc.storage.urls import sync_url

RULES = [
    ("id", events_pb2.CLASSIFICATION_PUBLIC),
    ("name", events_pb2.CLASSIFICATION_PUBLIC),
    ("amount", events_pb2.CLASSIFICATION_PUBLIC),
    ("meta.visible", events_pb2.CLASSIFICATION_PUBLIC),
    ("meta.tags", events_pb2.CLASSIFICATION_PUBLIC),
    ("owner_id", events_pb2.CLASSIFICATION_INTERNAL),
    ("lines", events_pb2.CLASSIFICATION_PUBLIC),
    ("lines.sku", events_pb2.CLASSIFICATION_PUBLIC),
    ("lines.cost", events_pb2.CLASSIFICATION_CONFIDENTIAL),
    ("notes", events_pb2.CLASSIFICATION_CONFIDENTIAL),
    ("meta.secret", events_pb2.CLASSIFICATION_RESTRICTED),
    ("salary", events_pb2.CLASSIFICATION_RESTRICTED),
    ("vault", events_pb2.CLASSIFICATION_CONFIDENTIAL),
    ("vault.open", events_pb2.CLASSIFICATION_PUBLIC),  # under a confidential parent: still hidden
]
ALLOWED_LEAVES = {
    "id",
    "name",
    "amount",
    "meta.visible",
    "meta.tags",
    "owner_id",
    "lines",
    "lines.sku",
}

_counter = itertools.count()


def marker() -> str:
    return f"V{next(_counter):06d}Z"


KEYS = st.sampled_from(
    [
        "id",
        "name",
        "amount",
        "notes",
        "salary",
        "owner_id",
        "meta",
        "lines",
        "vault",
        "extra",
        "password",
        "api_key",
        "x_secret",
        "auth_token",
        "visible",
        "secret",
        "sku",
        "cost",
        "tags",
        "open",
        "Name",
        "ünïcode",
        "a.b",
    ]
)


def entities() -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.builds(marker)
    tree = st.recursive(
        leaf,
        lambda children: st.one_of(
            st.dictionaries(KEYS, children, max_size=5), st.lists(children, max_size=3)
        ),
        max_leaves=20,
    )
    return st.dictionaries(KEYS, tree, min_size=1, max_size=8)


def allowed_markers(value: Any, path: str = "", hidden: bool = False) -> set[str]:
    """An independent oracle: markers at declared shareable leaf paths with no hidden ancestor."""
    rules = dict(RULES)
    if isinstance(value, dict):
        found: set[str] = set()
        for key, child in value.items():
            if not isinstance(key, str) or "." in key:
                continue
            child_path = f"{path}.{key}" if path else key
            rule = rules.get(child_path)
            child_hidden = hidden or rule in (
                events_pb2.CLASSIFICATION_CONFIDENTIAL,
                events_pb2.CLASSIFICATION_RESTRICTED,
            )
            found |= allowed_markers(child, child_path, child_hidden)
        return found
    if isinstance(value, list):
        return (
            set().union(*(allowed_markers(item, path, hidden) for item in value))
            if value
            else set()
        )
    return {value} if not hidden and path in ALLOWED_LEAVES else set()


def all_markers(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(set(), *(all_markers(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(set(), *(all_markers(v) for v in value))
    return {value}


class BackgroundServer:
    """The server and receiver on their own event loop thread, called with blocking stubs."""

    def __init__(self, database_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.receiver = Receiver()
        self.run(self.receiver.start())
        self.server: RunningServer = self.run(
            start_server(database_url, log_level="DEBUG", max_retry_attempts=1)
        )
        self.channel = grpc.insecure_channel(self.server.target)
        self.events = events_pb2_grpc.EventServiceStub(self.channel)
        self.feed = feed_pb2_grpc.FeedServiceStub(self.channel)
        self.subscriptions = subscriptions_pb2_grpc.SubscriptionServiceStub(self.channel)

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def close(self) -> None:
        self.channel.close()
        self.run(self.server.stop())
        self.run(self.receiver.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def background(database_url: str) -> Iterator[BackgroundServer]:
    server = BackgroundServer(database_url)
    yield server
    server.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entity=entities(), previous=entities())
def test_only_allowlisted_fields_leave_the_publisher(
    background: BackgroundServer,
    caplog: pytest.LogCaptureFixture,
    entity: dict[str, Any],
    previous: dict[str, Any],
) -> None:
    caplog.set_level(logging.DEBUG)
    background.events.RegisterEventType(
        events_pb2.RegisterEventTypeRequest(
            type="ledger.changed",
            fields=[events_pb2.FieldRule(path=p, classification=c) for p, c in RULES],
        )
    )
    if not background.subscriptions.ListSubscriptions(
        subscriptions_pb2.ListSubscriptionsRequest(tenant_id="acme")
    ).subscriptions:
        background.subscriptions.CreateSubscription(
            subscriptions_pb2.CreateSubscriptionRequest(
                tenant_id="acme", url=background.receiver.url(), event_patterns=["ledger.*"]
            )
        )
    entity_id = marker()
    published = background.events.PublishEvent(
        events_pb2.PublishEventRequest(
            tenant_id="acme",
            type="ledger.changed",
            entity_id=entity_id,
            data=struct(entity),
            previous=struct(previous),
        )
    ).event
    forbidden = (all_markers(entity) | all_markers(previous)) - (
        allowed_markers(entity) | allowed_markers(previous)
    )

    # An event whose every change is unshareable is answered but not shared (README, Payload
    # privacy); one with a shareable change in `previous` always is.
    withheld = not published.cursor
    if allowed_markers(previous) or not previous:
        assert not withheld
    delivered = None
    deadline = time.monotonic() + 10
    while not withheld and delivered is None:
        assert time.monotonic() < deadline, "the delivery did not arrive"
        time.sleep(0.01)
        delivered = next(
            (r for r in background.receiver.received if r.headers["webhook-id"] == published.id),
            None,
        )
    page = background.feed.ListEvents(
        feed_pb2.ListEventsRequest(tenant_id="acme", entity_id=entity_id)
    )
    engine = sa.create_engine(sync_url(background.server.app.settings.database.database_url))
    with engine.connect() as conn:
        stored = [
            tuple(str(v) for v in row)
            for row in conn.execute(
                sa.text("SELECT * FROM events WHERE entity_id = :e"), {"e": entity_id}
            )
        ]
    engine.dispose()

    if withheld:
        assert (stored, list(page.events)) == ([], [])
    places = {
        "stored row": json.dumps(stored),
        "delivery body": delivered.body.decode() if delivered else "",
        "delivery headers": json.dumps(delivered.headers) if delivered else "",
        "feed": str(page),
        "publish response": str(published),
        "logs": caplog.text,
    }
    for place, text in places.items():
        leaked = sorted(m for m in forbidden if m in text)
        assert not leaked, f"{place} contains {leaked}"
    if delivered is not None:
        body = json.loads(delivered.body)
        assert all_markers(body["data"]) <= allowed_markers(entity)
