"""The README's local-development walk-through, run as written: `make dev` (the development
profile), the receiver it shows, the commands it lists (subscribe, start the receiver with the
secret, publish), ending in a delivery that the receiver verified with the Python client.

Only the ports change (the test's own free ports) and `webhook-grpc` / `python` are this
interpreter's. Nothing resolves a host name: it works offline."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from pathlib import Path

from tests.support.network import free_port
from tests.support.processes import LoggingProcess

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Local development: a signed delivery on your machine"
RECEIVER_PORT = "8000"


def walkthrough() -> tuple[list[str], str, list[list[str]]]:
    """The section's first shell block (lines), its receiver (Python) and its commands."""
    text = (ROOT / "README.md").read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    start, commands = re.findall(r"```sh\n(.*?)```", text, re.S)
    (receiver,) = re.findall(r"```python\n(.*?)```", text, re.S)
    logical = re.sub(r"\\\n\s*", " ", commands)
    lines = [line.strip() for line in logical.splitlines()]
    return (
        start.splitlines(),
        receiver,
        [shlex.split(line) for line in lines if line and not line.startswith("#")],
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_GRPC_")}
    return env | extra


async def run(*args: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


async def wait_for_stdout(process: LoggingProcess, pattern: str, timeout: float = 30) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(re.search(pattern, line) for line in process.stdout):
        assert process.process.returncode is None, "\n".join(process.stderr)
        assert asyncio.get_running_loop().time() < deadline, "\n".join(process.stdout)
        await asyncio.sleep(0.05)
    return next(line for line in process.stdout if re.search(pattern, line))


async def start(*args: str, env: dict[str, str], cwd: Path) -> LoggingProcess:
    return LoggingProcess(
        await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
    )


async def test_the_local_development_walkthrough_ends_in_a_verified_delivery(
    tmp_path: Path,
) -> None:
    start_lines, receiver_code, commands = walkthrough()
    assert start_lines[0].startswith("make dev")
    assert "$(BIN)/webhook-grpc serve --dev" in (ROOT / "Makefile").read_text()
    port = str(free_port())
    receiver_file = tmp_path / "receiver.py"
    receiver_file.write_text(receiver_code.replace(RECEIVER_PORT, port))

    # `make dev`, in a directory of its own (its SQLite file lands there).
    server = await start(
        sys.executable,
        "-m",
        "webhook_grpc",
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        env=clean_env(),
        cwd=tmp_path,
    )
    processes = [server]
    try:
        await server.wait_for_line("DEVELOPMENT PROFILE")
        env = clean_env(WEBHOOK_GRPC_TARGET=f"127.0.0.1:{await server.port()}")
        subscribe, start_receiver, publish = commands
        assert subscribe[:3] == ["webhook-grpc", "subscriptions", "create"]
        created = await run(
            sys.executable,
            "-m",
            "webhook_grpc",
            *(a.replace(RECEIVER_PORT, port) for a in subscribe[1:]),
            env=env,
        )
        (secret,) = re.findall(r"^secret\s+(whsec_\S+)$", created, re.M)

        variable, value = start_receiver[0].split("=", 1)
        assert (variable, value) == ("WEBHOOK_SECRET", "whsec_…")
        assert start_receiver[1:] == ["python", "receiver.py"]
        receiver = await start(
            sys.executable, "receiver.py", env=env | {variable: secret}, cwd=tmp_path
        )
        processes.append(receiver)

        assert publish[:2] == ["webhook-grpc", "publish"]
        published = await run(sys.executable, "-m", "webhook_grpc", *publish[1:], "--json", env=env)
        event_id = json.loads(published)["id"]

        line = await wait_for_stdout(receiver, r"^(verified|refused)")
        verdict, delivered_id, body = line.split(" ", 2)
        assert (verdict, delivered_id) == ("verified", event_id)
        delivered = json.loads(body)
        assert delivered["type"] == "product.price_changed"
        assert delivered["data"] == {"id": "prod_1", "sku": "A-1", "selling_price": "19.90"}
        assert delivered["previous"] == {"selling_price": "17.50"}
    finally:
        for process in processes:
            await process.close()
