"""Secrets at rest (SPEC §12): the database, its dumps, the logs and /metrics never hold a usable
secret, and deliveries still verify; encryption keys rotate; a wrong key stops start-up."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.engine import make_url
from standardwebhooks.webhooks import Webhook
from webhook_grpc_client import verify

from tests.conftest import ServerFactory
from tests.support.databases import in_ci
from tests.support.factories import deliveries_of, publish, subscribe
from tests.support.receiver import Receiver
from tests.support.server import TEST_SETTINGS, RunningServer, start_server
from tests.support.signatures import overview_valid
from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb
from webhook_grpc.app import StartupError
from webhook_grpc.encryption import generate_key
from webhook_grpc.storage.ports import SealedSecrets

TEST_KEY = TEST_SETTINGS["secret_key"][0]


async def _stored_private_keys(server: RunningServer, subscription_id: str) -> list[str]:
    """The Ed25519 private keys (current and previous) as the dispatcher opens them (the test
    has the encryption key): each is stored with its shared secret, ``whsk_… whsec_…``."""
    async with server.app.storage.read() as unit:
        keys = await unit.subscriptions.signing_keys(subscription_id)
    assert keys is not None and keys.previous_secret is not None
    opened = [
        server.app.box.open(sealed, subscription_id)
        for sealed in (keys.secret, keys.previous_secret)
    ]
    return [signing_key.partition(" ")[0] for signing_key in opened]


def _needles(secrets: list[str]) -> list[bytes]:
    """Each secret as text, its base64 part, and its raw key bytes."""
    found = []
    for secret in secrets:
        encoded = secret.partition("_")[2]
        found += [secret.encode(), encoded.encode(), base64.b64decode(encoded)]
    return found


def _database_bytes(database_url: str) -> bytes:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        return b"".join(file.read_bytes() for file in files if file.exists())
    if shutil.which("pg_dump") is None:
        if in_ci():
            pytest.fail("pg_dump is needed to scan a PostgreSQL dump (CI=true)")
        pytest.skip("pg_dump is not installed: the PostgreSQL dump is not scanned")
    dump = subprocess.run(
        ["pg_dump", "--no-owner", "-d", url.set(drivername="postgresql").render_as_string(False)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert b"CREATE TABLE public.subscriptions" in dump.stdout
    return dump.stdout


async def _scrape(server: RunningServer) -> bytes:
    assert server.app.metrics_server is not None
    url = f"http://127.0.0.1:{server.app.metrics_server.port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.read()


async def test_no_secret_in_database_dump_logs_or_metrics_and_deliveries_verify(
    make_server: ServerFactory,
    database_url: str,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await make_server(metrics_listen="127.0.0.1:0")
    hmac_sub = await subscribe(server, receiver.url("/hmac"))
    ed_sub = await subscribe(
        server, receiver.url("/ed"), signing_algorithm=spb.SIGNING_ALGORITHM_ED25519
    )
    rotated = await server.subscriptions.RotateSubscriptionSecret(
        spb.RotateSubscriptionSecretRequest(id=hmac_sub.subscription.id)
    )
    ed_rotated = await server.subscriptions.RotateSubscriptionSecret(
        spb.RotateSubscriptionSecretRequest(id=ed_sub.subscription.id)
    )
    receiver.on("/failing", statuses=[500])
    await subscribe(server, receiver.url("/failing"))
    await publish(server)
    await receiver.wait_count(1, "/hmac")
    await receiver.wait_count(1, "/ed")
    await receiver.wait_count(1, "/failing")

    [hmac_request] = receiver.at("/hmac")
    headers = {k.lower(): v for k, v in hmac_request.headers.items()}
    for secret in (hmac_sub.secret, rotated.secret):
        Webhook(secret).verify(hmac_request.body, headers)
        verify(headers, hmac_request.body, secret)
    [ed_request] = receiver.at("/ed")
    ed_headers = {k.lower(): v for k, v in ed_request.headers.items()}
    for public_key in (ed_sub.subscription.public_key, ed_rotated.subscription.public_key):
        verify(ed_headers, ed_request.body, public_key)
    for secret in (ed_sub.secret, ed_rotated.secret):
        assert overview_valid(ed_headers["x-webhook-signature"], ed_request.body, secret)

    private_keys = await _stored_private_keys(server, ed_sub.subscription.id)
    assert all(key.startswith("whsk_") for key in private_keys)
    needles = _needles(
        [hmac_sub.secret, rotated.secret, ed_sub.secret, ed_rotated.secret, *private_keys]
    )
    metrics = await _scrape(server)
    logged = "\n".join(
        f"{record.getMessage()} {json.dumps(vars(record), default=str)}"
        for record in caplog.records
    ).encode()
    stored = _database_bytes(database_url)
    for needle in needles:
        assert needle not in stored
        assert needle not in logged
        assert needle not in metrics
    assert b"whenc:v1:" in stored


async def _reencrypt(
    database_url: str, keys: str, *command: str
) -> subprocess.CompletedProcess[str]:
    """`webhook-grpc <command>` (re-encryption) in a process of its own."""
    env = {**os.environ, "WEBHOOK_GRPC_SECRET_KEY": keys}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "webhook_grpc", *command, "--database-url", database_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_encryption_key_rotation_with_re_encrypt(
    database_url: str, receiver: Receiver
) -> None:
    old_key, new_key = TEST_KEY, generate_key()
    server = await start_server(database_url)
    created = await subscribe(server, receiver.url())
    ed = await subscribe(
        server, receiver.url("/ed"), signing_algorithm=spb.SIGNING_ALGORITHM_ED25519
    )
    await server.stop()

    # The new key first (it seals), the old one still opens; then re-encrypt everything.
    # SPEC §12's name, then the same action under `secrets`.
    first = await _reencrypt(database_url, f"{new_key},{old_key}", "rotate-secret-key")
    assert first.returncode == 0, first.stderr
    assert "re-encrypted 2 subscription(s)" in first.stdout
    again = await _reencrypt(database_url, f"{new_key},{old_key}", "secrets", "re-encrypt")
    assert "re-encrypted 0 subscription(s)" in again.stdout and "2 already were" in again.stdout

    # The old key removed: the rows still open and sign.
    server = await start_server(database_url, secret_key=[new_key])
    try:
        await publish(server)
        await receiver.wait_count(1, "/hook")
        await receiver.wait_count(1, "/ed")
        [request] = receiver.at("/hook")
        Webhook(created.secret).verify(request.body, dict(request.headers))
        [signed] = receiver.at("/ed")
        verify(dict(signed.headers), signed.body, ed.subscription.public_key)
    finally:
        await server.stop()


async def test_a_wrong_key_stops_start_up_with_one_clear_line(
    database_url: str, receiver: Receiver
) -> None:
    server = await start_server(database_url)
    await subscribe(server, receiver.url())
    await server.stop()
    with pytest.raises(StartupError) as stopped:
        await start_server(database_url, secret_key=[generate_key()])
    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith("wrong secret key: subscription secrets are encrypted with key id")


async def test_postgresql_without_keys_refuses_to_start(postgres_url: str) -> None:
    with pytest.raises(StartupError, match="secret_key is not set: on PostgreSQL"):
        await start_server(postgres_url, secret_key=[])


async def test_sqlite_without_keys_generates_a_private_key_file_and_says_so(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "dev.db"
    server = await start_server(f"sqlite:///{database}", secret_key=[])
    try:
        created = await subscribe(server, receiver.url())
        await publish(server)
        await receiver.wait_count(1)
        Webhook(created.secret).verify(
            receiver.received[0].body, dict(receiver.received[0].headers)
        )
    finally:
        await server.stop()
    key_file = tmp_path / "dev.db.secret-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert any("GENERATED a development encryption key" in r.getMessage() for r in caplog.records)
    # The next start reads the same file: the secrets still open.
    server = await start_server(f"sqlite:///{database}", secret_key=[])
    await server.stop()
    assert os.stat(key_file).st_size > 0


async def test_a_secret_no_key_opens_holds_its_deliveries_without_losing_them(
    server: RunningServer, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    broken = await subscribe(server, receiver.url("/broken"))
    healthy = await subscribe(server, receiver.url("/healthy"))
    broken_id, healthy_id = broken.subscription.id, healthy.subscription.id
    # The healthy row's sealed secret copied onto the other row: bound to its own id, it does
    # not open there (as after tampering with the database).
    async with server.app.storage.transaction() as unit:
        [row] = [
            r
            for r in await unit.subscriptions.sealed_secrets_page("", 10)
            if r.subscription_id == broken_id
        ]
        keys = await unit.subscriptions.signing_keys(healthy_id)
        assert keys is not None
        await unit.subscriptions.replace_sealed(row, SealedSecrets(broken_id, keys.secret, None))
    event = await publish(server)
    await receiver.wait_count(1, "/healthy")
    [held] = [d for d in await deliveries_of(server, event.id) if d.subscription_id == broken_id]

    deadline = asyncio.get_running_loop().time() + 10
    while not any(f"cannot sign for {broken_id}" in r.getMessage() for r in caplog.records):
        assert asyncio.get_running_loop().time() < deadline, "no log line for the broken row"
        await asyncio.sleep(0.05)
    held = await server.deliveries.GetDelivery(dpb.GetDeliveryRequest(id=held.id))
    assert held.delivery.status == dpb.DELIVERY_STATUS_PENDING  # not cancelled, not failed
    assert held.delivery.attempt_count == 0
    assert receiver.at("/broken") == []
    logged = caplog.text
    assert broken.secret not in logged and healthy.secret not in logged
