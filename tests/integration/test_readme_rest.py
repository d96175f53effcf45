"""The README's REST Quick Start runs as written (curl, jq) against a real server."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import ServerFactory
from tests.support.receiver import Receiver

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Quick Start with curl (REST/JSON)"


def _blocks() -> list[str]:
    section = README.read_text().split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


async def _run(script: str, cwd: Path, *allowed: int) -> str:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode in (0, *allowed), (script, out.decode(), err.decode())
    return out.decode()


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
async def test_the_quick_start_works_as_written(
    make_server: ServerFactory, receiver: Receiver, tmp_path: Path
) -> None:
    server = await make_server()  # open, like `make run`
    quick_start, lifecycle, stream = _blocks()
    assert quick_start.startswith("API=http://127.0.0.1:8080/api/v1/webhooks\n")

    def as_here(block: str) -> str:
        return (
            block.replace("http://127.0.0.1:8080", server.http)
            # This machine's endpoint, instead of example.com.
            .replace("https://example.com/hooks", receiver.url("/hooks"))
            .replace("curl -sS", "curl -sS --fail-with-body")
        )

    await _run(as_here(quick_start), tmp_path)
    created = json.loads((tmp_path / "subscription.json").read_text())
    assert created["secret"].startswith("whsec_")
    # Step 2: the published event arrives, signed.
    [delivered] = (await receiver.wait_for(lambda got: len(got) >= 1))[:1]
    assert json.loads(delivered.body)["type"] == "product.price_changed"
    assert "webhook-signature" in {name.lower() for name in delivered.headers}

    # The later blocks, in the same shell session as far as they are concerned.
    session = (
        as_here(quick_start.split("\n", 1)[0])
        + "\nSUB=$(jq -r .subscription.id subscription.json)\n"
    )
    await _run(session + as_here(lifecycle), tmp_path)
    await receiver.wait_for(
        lambda got: any(json.loads(r.body)["type"] == "webhook.test" for r in got)
    )

    # The stream runs until stopped; here for two seconds (curl's exit code 28: time is up).
    stream_command = as_here(stream).replace(
        "curl -sS --fail-with-body -N", "curl -sS -N --max-time 2"
    )
    output = await _run(session + stream_command, tmp_path, 28)
    assert "event: product.price_changed" in output
    assert "event: webhook.test" in output
