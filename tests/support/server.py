"""A real webhook-grpc App on a loopback port, with stubs for every service."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from webhook_grpc._gen.webhooks.v1 import (
    deliveries_pb2_grpc,
    events_pb2_grpc,
    feed_pb2_grpc,
    subscriptions_pb2_grpc,
)
from webhook_grpc.app import App, Roles
from webhook_grpc.config import load_settings
from webhook_grpc.tracing import OFF, Tracing

# The settings every test server runs with, shared with the TypeScript client's tests; each
# server listens on a port of its own.
TEST_SETTINGS: dict[str, Any] = {
    "listen": "127.0.0.1:0",
    **{
        name: value
        for name, value in json.loads(
            (Path(__file__).with_name("test_settings.json")).read_text()
        ).items()
        if not name.startswith("_")
    },
}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class RunningServer:
    app: App
    channel: grpc.aio.Channel
    target: str
    extra_channels: list[grpc.aio.Channel] = field(default_factory=list)
    stopped: bool = False

    @property
    def http(self) -> str:
        """The REST listener's base URL."""
        return f"http://127.0.0.1:{self.app.http_port}"

    @property
    def events(self) -> events_pb2_grpc.EventServiceStub:
        return events_pb2_grpc.EventServiceStub(self.channel)

    @property
    def subscriptions(self) -> subscriptions_pb2_grpc.SubscriptionServiceStub:
        return subscriptions_pb2_grpc.SubscriptionServiceStub(self.channel)

    @property
    def feed(self) -> feed_pb2_grpc.FeedServiceStub:
        return feed_pb2_grpc.FeedServiceStub(self.channel)

    @property
    def deliveries(self) -> deliveries_pb2_grpc.DeliveryServiceStub:
        return deliveries_pb2_grpc.DeliveryServiceStub(self.channel)

    def new_channel(self) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(self.target)
        self.extra_channels.append(channel)
        return channel

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        for channel in [self.channel, *self.extra_channels]:
            await channel.close()
        await self.app.stop(grace=1.0)


async def start_server(
    database_url: str,
    *,
    roles: Roles | None = None,
    clock: Any = None,
    tracing: Tracing = OFF,
    **overrides: Any,
) -> RunningServer:
    """Tracing is off unless a test hands its own (never from this process's OTEL_* variables)."""
    settings = load_settings(
        None, env={}, overrides={**TEST_SETTINGS, "database_url": database_url, **overrides}
    )
    app = App(settings, roles or Roles(), **({"clock": clock} if clock else {}), tracing=tracing)
    await app.start()
    target = f"127.0.0.1:{app.port}"
    return RunningServer(app, grpc.aio.insecure_channel(target), target)
