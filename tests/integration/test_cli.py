"""The `webhook-grpc` command end to end: each test runs `python -m webhook_grpc …` in a subprocess
against a live server (or runs the server itself as one).

The client commands do not depend on the storage engine, so this module runs on SQLite only.
Subprocesses are asyncio subprocesses: the receiver and the server share the test's event loop
and must keep answering while a command runs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from standardwebhooks.webhooks import Webhook
from webhook_grpc_client import verify

from tests.conftest import ServerFactory
from tests.support.network import free_port
from tests.support.processes import settings_env
from tests.support.receiver import Receiver
from tests.support.server import RunningServer, token_hash
from tests.support.signatures import VECTOR

SECRET = VECTOR.secret  # any valid secret


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only here (overrides the SQLite + PostgreSQL parametrisation)."""
    return f"sqlite:///{tmp_path / 'webhooks.db'}"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any WEBHOOK_GRPC_* setting of the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_GRPC_")}
    env.update(extra)
    return env


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


async def spawn(*args: str, env: Mapping[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "webhook_grpc",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else clean_env(),
    )


async def run(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> Result:
    process = await spawn(*args, env=env)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    result = Result(process.returncode, stdout.decode(), stderr.decode())
    assert "Traceback" not in result.stderr, result.stderr
    return result


async def read_lines(process: asyncio.subprocess.Process, count: int) -> list[str]:
    assert process.stdout is not None
    lines = []
    for _ in range(count):
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line, "the command exited early"
        lines.append(line.decode().rstrip("\n"))
    return lines


async def stop(process: asyncio.subprocess.Process) -> str:
    """Interrupt a following command (Ctrl-C); returns its stderr after checking a clean exit."""
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(process.wait(), 20)
    except TimeoutError:
        # Fail this test only: a process left running would fail a later one when collected.
        process.kill()
        await process.wait()
        raise AssertionError("the command did not exit within 20 s of Ctrl-C") from None
    assert process.stderr is not None
    stderr = (await process.stderr.read()).decode()
    assert "Traceback" not in stderr, stderr
    assert process.returncode == 130, stderr
    return stderr


class Cli(Protocol):
    async def __call__(self, *args: str, env: Mapping[str, str] | None = None) -> Result: ...


@pytest.fixture
def cli(server: RunningServer) -> Cli:
    """`await cli(args…)`: run a client command against the test server."""

    async def call(*args: str, env: Mapping[str, str] | None = None) -> Result:
        return await run(*args, "--target", server.target, env=env)

    return call


# publish


async def test_publish(cli: Cli) -> None:
    data = '{"id": "prod_1", "sku": "A-1", "selling_price": "19.90", "cost_price": "7.10"}'
    human = await cli(
        "publish", "product.price_changed", "prod_1", "--tenant", "acme", "--data", data
    )
    assert human.code == 0, human.stderr
    fields = dict(line.split(None, 1) for line in human.stdout.splitlines())
    assert fields["id"].startswith("evt_") and fields["type"] == "product.price_changed"
    assert "cost_price" not in human.stdout

    args = ["publish", "product.price_changed", "prod_1", "--tenant", "acme", "--json"]
    keyed = [
        await cli(
            *args,
            "--data",
            data,
            "--previous",
            '{"selling_price": "17.50"}',
            "--idempotency-key",
            "k-1",
        )
        for _ in range(2)
    ]
    first, again = (r.json() for r in keyed)
    assert first["id"] == again["id"] != fields["id"]
    assert first["data"] == {"id": "prod_1", "sku": "A-1", "selling_price": "19.90"}
    assert first["previous"] == {"selling_price": "17.50"}
    assert first["tenant_id"] == "acme" and first["cursor"]


async def test_bad_input_is_refused_clearly(cli: Cli) -> None:
    bad_json = await cli(
        "publish", "product.created", "p1", "--tenant", "acme", "--data", '{"id": '
    )
    assert bad_json.code == 2 and "--data is not valid JSON" in bad_json.stderr
    not_object = await cli("publish", "product.created", "p1", "--tenant", "acme", "--data", "[1]")
    assert not_object.code == 2 and "--data must be a JSON object" in not_object.stderr
    # Too deep for protobuf (or even for the JSON decoder): one line before any call, not a
    # traceback.
    for depth in (40, 5000):
        nested = '{"id": "p1", "name": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
        deep = await cli("publish", "product.created", "p1", "--tenant", "acme", "--data", nested)
        assert deep.code == 2, deep.stderr
        assert deep.stderr.strip().endswith(
            "--data is nested too deeply: at most 32 levels of objects and arrays"
        )
        assert "Traceback" not in deep.stderr
    fits = '{"id": "p1", "name": ' + '{"a": ' * 31 + "1" + "}" * 31 + "}"
    assert (
        await cli("publish", "product.created", "p1", "--tenant", "acme", "--data", fits)
    ).code == 0
    no_tenant = await cli("publish", "product.created", "p1")
    assert no_tenant.code == 2 and "--tenant is required" in no_tenant.stderr
    # INVALID_ARGUMENT from the server: the field violation is printed.
    unknown = await cli("publish", "product.nope", "p1", "--tenant", "acme")
    assert unknown.code == 1
    assert "invalid argument: type: event type 'product.nope' is not registered" in unknown.stderr
    bad_pattern = await cli(
        "subscriptions", "create", "https://example.com/h", "-p", "nope.x", "--tenant", "acme"
    )
    assert bad_pattern.code == 1 and "invalid argument: event_patterns" in bad_pattern.stderr
    usage = await cli("subscriptions", "create", "https://example.com/h")
    assert usage.code == 2 and "--pattern" in usage.stderr


async def test_an_unreachable_server_is_reported_alike_by_every_command() -> None:
    target = f"127.0.0.1:{free_port()}"
    for args in (
        ["publish", "product.created", "p1", "--tenant", "acme"],
        ["subscriptions", "list", "--tenant", "acme"],
        ["feed", "tail", "--tenant", "acme"],
        ["listen", "--tenant", "acme", "--forward-to", "http://127.0.0.1:9/x"],
    ):
        result = await run(*args, "--target", target)
        assert result.code == 3, result
        [line] = result.stderr.splitlines()
        assert line.startswith(f"webhook-grpc {args[0]}: cannot reach {target}: "), line
        assert line.endswith("see --target or $WEBHOOK_GRPC_TARGET)"), line
        assert result.stdout == ""


async def test_checks_that_need_no_server_are_made_before_any_call() -> None:
    nowhere = ["--target", f"127.0.0.1:{free_port()}"]
    for args in (
        ["listen", "--forward-to", "http://127.0.0.1:9/x"],
        ["feed", "tail"],
        ["subscriptions", "list"],
    ):
        result = await run(*args, *nowhere, timeout=10)
        assert result.code == 2, result
        assert result.stderr.startswith(f"webhook-grpc {args[0]}: --tenant is required"), result
        assert "whsec_" not in result.stderr and "forwarding" not in result.stderr
        assert result.stdout == ""


async def test_target_and_token_from_the_environment_flags_win(
    make_server: ServerFactory,
) -> None:
    secured = await make_server(
        tokens=[{"role": "tenant", "tenant": "acme", "sha256": token_hash("acme-token")}]
    )
    nowhere = f"127.0.0.1:{free_port()}"
    from_env = await run(
        "subscriptions",
        "list",
        "--json",
        env=clean_env(WEBHOOK_GRPC_TARGET=secured.target, WEBHOOK_GRPC_TOKEN="acme-token"),
    )
    assert from_env.code == 0 and from_env.json() == {"subscriptions": []}, from_env.stderr
    flags_win = await run(
        "subscriptions",
        "list",
        "--target",
        secured.target,
        "--token",
        "acme-token",
        env=clean_env(WEBHOOK_GRPC_TARGET=nowhere, WEBHOOK_GRPC_TOKEN="wrong"),
    )
    assert flags_win.code == 0, flags_win.stderr
    env_target_used = await run("subscriptions", "list", env=clean_env(WEBHOOK_GRPC_TARGET=nowhere))
    assert env_target_used.code == 2  # no tenant: refused before calling
    unreachable = await run(
        "subscriptions", "list", "--tenant", "acme", env=clean_env(WEBHOOK_GRPC_TARGET=nowhere)
    )
    assert unreachable.code == 3 and f"cannot reach {nowhere}" in unreachable.stderr


# subscriptions


async def test_an_ed25519_subscription_shows_its_public_key_and_its_secret(cli: Cli) -> None:
    created = await cli(
        "subscriptions",
        "create",
        "https://example.com/ed",
        "-p",
        "*",
        "--signing-algorithm",
        "ed25519",
        "--tenant",
        "acme",
    )
    assert created.code == 0, created.stderr
    fields = dict(line.split(None, 1) for line in created.stdout.splitlines())
    assert fields["signing_algorithm"] == "ed25519"
    assert fields["public_key"].startswith("whpk_")
    # The shared secret keys X-Webhook-Signature (SPEC §12); the private key is never shown.
    assert fields["secret"].startswith("whsec_") and "shown only now" in created.stderr
    assert "whsk_" not in created.stdout


async def test_subscription_commands(cli: Cli) -> None:
    common = ["--tenant", "acme"]
    created = await cli(
        "subscriptions",
        "create",
        "https://example.com/hooks",
        "-p",
        "product.*",
        "--pattern",
        "customer.created",
        "--description",
        "shop",
        "--metadata",
        "team=web",
        *common,
    )
    assert created.code == 0, created.stderr
    fields = dict(line.split(None, 1) for line in created.stdout.splitlines())
    sub_id, secret = fields["id"], fields["secret"]
    assert sub_id.startswith("sub_") and secret.startswith("whsec_")
    assert fields["event_patterns"] == "product.*, customer.created"
    assert "shown only now" in created.stderr

    made = await cli(
        "subscriptions",
        "create",
        "https://example.com/other",
        "-p",
        "*",
        "--fifo",
        "--rate-limit",
        "50",
        "--json",
        *common,
    )
    other = made.json()
    assert other["subscription"]["ordering"] == "ORDERING_FIFO"
    assert other["subscription"]["rate_limit_per_second"] == 50
    assert str(other["secret"]).startswith("whsec_")
    other_id = other["subscription"]["id"]

    table = await cli("subscriptions", "list", *common)
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "PATTERNS", "URL", "CREATED"]
    assert sorted(row.split()[0] for row in rows) == sorted([sub_id, other_id])
    listed = (await cli("subscriptions", "list", "--json", *common)).json()
    assert {s["id"] for s in listed["subscriptions"]} == {sub_id, other_id}
    assert all("secret" not in s for s in listed["subscriptions"])

    got = await cli("subscriptions", "get", sub_id, *common)
    assert "description     shop" in got.stdout and "metadata        team=web" in got.stdout
    assert "ordering        unordered" in got.stdout and "rate_limit" not in got.stdout
    limited = await cli("subscriptions", "get", other_id, *common)
    assert "ordering        fifo" in limited.stdout and "rate_limit      50/s" in limited.stdout
    assert secret not in got.stdout

    disabled = await cli("subscriptions", "disable", sub_id, *common)
    assert "disabled (manual)" in disabled.stdout
    only_disabled = await cli("subscriptions", "list", "--status", "disabled", "--json", *common)
    assert [s["id"] for s in only_disabled.json()["subscriptions"]] == [sub_id]
    activated = await cli("subscriptions", "activate", sub_id, "--json", *common)
    assert activated.json()["status"] == "SUBSCRIPTION_STATUS_ACTIVE"

    rotated = await cli(
        "subscriptions", "rotate-secret", sub_id, "--grace", "0s", "--json", *common
    )
    new_secret = rotated.json()["secret"]
    assert str(new_secret).startswith("whsec_") and new_secret != secret
    rotated_human = await cli("subscriptions", "rotate-secret", sub_id, "--secret", SECRET, *common)
    assert f"secret                      {SECRET}" in rotated_human.stdout

    deleted = await cli("subscriptions", "delete", sub_id, *common)
    assert deleted.code == 0 and deleted.stdout.strip() == f"deleted {sub_id}"
    deleted_json = await cli("subscriptions", "delete", other_id, "--json", *common)
    assert deleted_json.json() == {"deleted": other_id}
    gone = await cli("subscriptions", "get", sub_id, *common)
    assert gone.code == 1 and "not found" in gone.stderr
    empty = await cli("subscriptions", "list", *common)
    assert empty.code == 0 and empty.stdout == "" and "no subscriptions" in empty.stderr


async def test_filter_headers_and_replay(
    cli: Cli, server: RunningServer, receiver: Receiver
) -> None:
    common = ["--tenant", "acme"]
    for entity_id in ("keep", "drop"):
        published = await cli("publish", "product.created", entity_id, "--data", "{}", *common)
        assert published.code == 0, published.stderr
    created = await cli(
        "subscriptions",
        "create",
        receiver.url("/controls"),
        "-p",
        "product.*",
        "--filter",
        'entity_id == "keep"',
        "--header",
        "X-Tenant: a",
        "--json",
        *common,
    )
    assert created.code == 0, created.stderr
    subscription = created.json()["subscription"]
    assert subscription["filter"] == 'entity_id == "keep"'
    assert subscription["headers"] == {"X-Tenant": "a"}
    replayed = await cli("subscriptions", "replay", subscription["id"], "--since", "2h", *common)
    assert (replayed.code, replayed.stdout.strip()) == (0, "queued 1"), replayed.stderr
    again = await cli("subscriptions", "replay", subscription["id"], "--json", *common)
    assert again.json() == {"queued": 0}
    await receiver.wait_count(1, "/controls")
    assert receiver.at("/controls")[0].headers["X-Tenant"] == "a"

    bad_header = await cli(
        "subscriptions", "create", receiver.url(), "-p", "*", "--header", "Host: x", *common
    )
    assert bad_header.code != 0 and 'headers["Host"]' in bad_header.stderr
    bad_filter = await cli(
        "subscriptions", "create", receiver.url(), "-p", "*", "--filter", "type ==", *common
    )
    assert bad_filter.code != 0 and "line 1, column" in bad_filter.stderr


async def test_token_from_flag_or_environment(make_server: ServerFactory) -> None:
    secured = await make_server(
        tokens=[{"role": "tenant", "tenant": "acme", "sha256": token_hash("acme-token")}]
    )
    target = ["--target", secured.target]
    anonymous = await run("subscriptions", "list", "--tenant", "acme", *target)
    assert anonymous.code == 1 and "unauthenticated" in anonymous.stderr
    assert "WEBHOOK_GRPC_TOKEN" in anonymous.stderr
    # A tenant token may leave --tenant out: it means its own tenant.
    by_flag = await run("subscriptions", "list", "--token", "acme-token", "--json", *target)
    assert by_flag.code == 0 and by_flag.json() == {"subscriptions": []}
    by_env = await run(
        "subscriptions", "list", *target, env=clean_env(WEBHOOK_GRPC_TOKEN="acme-token")
    )
    assert by_env.code == 0, by_env.stderr
    other = await run(
        "subscriptions", "list", "--tenant", "globex", "--token", "acme-token", *target
    )
    assert other.code == 1 and "permission denied" in other.stderr
    # listen asks before it prints its banner and the secret it signs with.
    listen = await run(
        "listen",
        "--forward-to",
        "http://127.0.0.1:9/x",
        "--tenant",
        "globex",
        *target,
        env=clean_env(WEBHOOK_GRPC_TOKEN="acme-token"),
    )
    assert listen.code == 1 and "permission denied" in listen.stderr, listen
    assert "forwarding" not in listen.stderr and "whsec_" not in listen.stderr


# feed tail


async def publish(cli: Cli, entity_id: str, type: str = "product.created") -> Any:
    result = await cli(
        "publish",
        type,
        entity_id,
        "--tenant",
        "acme",
        "--data",
        json.dumps({"id": entity_id}),
        "--json",
    )
    assert result.code == 0, result.stderr
    return result.json()


async def test_feed_tail_prints_the_backlog_and_follows(cli: Cli, server: RunningServer) -> None:
    events = [await publish(cli, f"p{i}") for i in range(3)]
    target = ["--target", server.target, "--tenant", "acme"]

    tail = await spawn("feed", "tail", "--json", *target)
    try:
        backlog = [json.loads(line) for line in await read_lines(tail, 3)]
        assert [e["id"] for e in backlog] == [e["id"] for e in events]
        live = await publish(cli, "p3")
        (followed,) = [json.loads(line) for line in await read_lines(tail, 1)]
        assert followed["id"] == live["id"] and followed["data"] == {"id": "p3"}
    finally:
        await stop(tail)

    human = await spawn("feed", "tail", "--after", str(events[1]["cursor"]), *target)
    try:
        lines = await read_lines(human, 2)
        assert [line.split()[1] for line in lines] == [events[2]["id"], live["id"]]
        assert lines[0].split()[2:5] == ["product.created", "p2", events[2]["cursor"]]
    finally:
        await stop(human)

    customers = await spawn("feed", "tail", "--json", "-p", "customer.*", *target)
    try:
        wanted = await publish(cli, "c1", "customer.created")
        (line,) = await read_lines(customers, 1)
        assert json.loads(line)["id"] == wanted["id"]
    finally:
        await stop(customers)


# listen


async def test_listen_forwards_signed_deliveries_like_the_dispatcher(
    cli: Cli, server: RunningServer, receiver: Receiver
) -> None:
    # A real subscription to compare with: its delivery of the same event must match byte for byte.
    created = await cli(
        "subscriptions", "create", receiver.url("/real"), "-p", "*", "--tenant", "acme", "--json"
    )
    assert created.code == 0, created.stderr
    event = await publish(cli, "p1")
    await receiver.wait_count(1, "/real")

    listen = await spawn(
        "listen",
        "--forward-to",
        receiver.url("/dev"),
        "--secret",
        SECRET,
        "--from-start",
        "--json",
        "--tenant",
        "acme",
        "--target",
        server.target,
    )
    try:
        (line,) = await read_lines(listen, 1)
        report = json.loads(line)
        assert report["event_id"] == event["id"] and report["status_code"] == 200 and report["ok"]
        later = await publish(cli, "p2")
        (line,) = await read_lines(listen, 1)
        assert json.loads(line)["event_id"] == later["id"]
    finally:
        stderr = await stop(listen)
    assert "forwarding events to" in stderr

    forwarded = receiver.at("/dev")
    assert [json.loads(r.body)["id"] for r in forwarded] == [event["id"], later["id"]]
    real, dev = receiver.at("/real")[0], forwarded[0]
    assert dev.body == real.body
    names = {"content-type", "webhook-id", "webhook-timestamp", "webhook-signature"}
    names |= {"x-webhook-signature", "x-webhook-event", "user-agent"}
    for name in names:
        assert name in {k.lower() for k in dev.headers}, name
    assert dev.headers["webhook-id"] == event["id"]
    assert dev.headers["X-Webhook-Event"] == "product.created"
    assert dev.headers["User-Agent"] == real.headers["User-Agent"]
    verify(dev.headers, dev.body, SECRET)
    body_only = {"X-Webhook-Signature": dev.headers["X-Webhook-Signature"]}
    verify(body_only, dev.body, SECRET, allow_body_only=True)
    Webhook(SECRET).verify(dev.body, dict(dev.headers))


async def test_listen_reports_an_endpoint_that_refuses_connections(
    cli: Cli, server: RunningServer
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    event = await publish(cli, "p1")
    target = ["--tenant", "acme", "--target", server.target]
    url = f"http://{closed}/hooks"
    listen = await spawn("listen", "--forward-to", url, "--from-start", *target)
    try:
        (line,) = await read_lines(listen, 1)
    finally:
        await stop(listen)
    assert line.startswith(f"failed  {event['id']}  product.created"), line
    assert line.endswith(f"cannot connect to {closed}: Connection refused"), line
    assert "ssl" not in line


async def test_listen_refuses_bad_options(cli: Cli) -> None:
    bad_secret = await cli(
        "listen", "--forward-to", "http://127.0.0.1:9/x", "--secret", "nope", "--tenant", "acme"
    )
    assert bad_secret.code == 2 and "--secret" in bad_secret.stderr
    bad_url = await cli(
        "listen", "--forward-to", "localhost:9", "--secret", SECRET, "--tenant", "acme"
    )
    assert bad_url.code == 2 and "--forward-to must be an http" in bad_url.stderr


# the server commands


async def wait_serving(server: asyncio.subprocess.Process, port: int) -> None:
    """Until `serve` answers its health check as SERVING."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            try:
                answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            assert server.returncode is None, "serve exited"
            assert asyncio.get_running_loop().time() < deadline, "serve never became healthy"
            await asyncio.sleep(0.1)


async def terminate(server: asyncio.subprocess.Process) -> str:
    """SIGTERM; returns the log after checking a clean exit."""
    server.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(server.wait(), 30) == 0
    assert server.stderr is not None
    log = (await server.stderr.read()).decode()
    assert "Traceback" not in log and "shutting down" in log
    return log


async def kill(server: asyncio.subprocess.Process) -> None:
    if server.returncode is None:
        server.kill()
        await server.wait()


async def test_serve_runs_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = settings_env(f"sqlite:///{tmp_path / 'serve.db'}", listen=f"127.0.0.1:{port}")
    server = await spawn("serve", env=env)
    try:
        await wait_serving(server, port)
        await terminate(server)
    finally:
        await kill(server)


async def test_a_second_process_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "one.db"
    config = tmp_path / "webhook-grpc.toml"
    config.write_text(
        f"database_url = {json.dumps(f'sqlite:///{database}')}\nlog_format = 'text'\n"
        "http_listen = '127.0.0.1:0'\n"
    )
    port = free_port()
    first = await spawn("serve", "--config", str(config), "--listen", f"127.0.0.1:{port}")
    try:
        await wait_serving(first, port)
        for command in (
            ("serve", "--listen", f"127.0.0.1:{free_port()}"),
            ("dispatcher",),
            ("migrate",),
        ):
            refused = await run(*command, "--config", str(config))
            assert refused.code == 2, (command, refused.stderr)
            [line] = refused.stderr.splitlines()
            assert str(database) in line, line
            assert f"pid {first.pid}: webhook-grpc serve" in line, line
        # The first one never noticed.
        await wait_serving(first, port)
        await terminate(first)
        # Once it has stopped, the file is free again (the lock file stays, unlocked).
        second = await spawn("serve", "--config", str(config), "--listen", f"127.0.0.1:{port}")
        try:
            await wait_serving(second, port)
            await terminate(second)
        finally:
            await kill(second)
    finally:
        await kill(first)


async def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "migrated.db"
    result = await run("migrate", "--database-url", f"sqlite:///{path}")
    assert result.code == 0, result.stderr
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"events", "subscriptions", "deliveries", "attempts"} <= tables


async def test_an_invalid_setting_stops_start_up_naming_it(tmp_path: Path) -> None:
    env = clean_env(
        WEBHOOK_GRPC_DATABASE_URL=f"sqlite:///{tmp_path / 'never.db'}",
        WEBHOOK_GRPC_DELIVERY_TIMEOUT="abc",
    )
    result = await run("serve", env=env)
    assert result.code == 2
    [line] = result.stderr.splitlines()
    assert "delivery_timeout" in line
    assert not (tmp_path / "never.db").exists()


async def test_fatal_start_errors_are_one_line_without_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        database = f"sqlite:///{tmp_path / 'a.db'}"
        in_use = await run("serve", env=settings_env(database, listen=f"127.0.0.1:{port}"))
        metrics_in_use = await run(
            "serve",
            env=settings_env(database, listen="127.0.0.1:0", metrics_listen=f"127.0.0.1:{port}"),
        )
    assert in_use.code == 2
    [line] = in_use.stderr.splitlines()
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in line, line
    assert metrics_in_use.code == 2
    [line] = metrics_in_use.stderr.splitlines()
    assert f"127.0.0.1:{port} (metrics_listen): Address already in use" in line, line

    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"
    for command in ("serve", "dispatcher", "migrate"):
        unreachable = await run(command, env=settings_env(nowhere, listen="127.0.0.1:0"))
        assert unreachable.code == 3, unreachable.stderr
        [line] = unreachable.stderr.splitlines()
        assert "cannot use the database: connection failed" in line, line


async def test_help_lists_every_command() -> None:
    result = await run("--help")
    assert result.code == 0
    for command in ("serve", "dispatcher", "migrate", "publish", "subscriptions", "feed", "listen"):
        assert command in result.stdout
