"""The README's generated and checked parts (configuration, built-in types) must not drift."""

from __future__ import annotations

import ast
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature

from scripts.config_table import BEGIN, END, render
from webhook_grpc.domain.builtin_types import BUILTIN_SCHEMAS, BUILTIN_TYPES
from webhook_grpc.domain.projection import Classification
from webhook_grpc.domain.signing import (
    delivery_headers,
    ed25519_public_key,
    generate_ed25519_private_key,
    generate_secret,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def test_config_table_is_current() -> None:
    text = README.read_text()
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert table == render(), "run: python scripts/config_table.py --write"


def _section(title: str) -> str:
    return README.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _table_rows(text: str, header: str) -> list[list[str]]:
    lines = text.split(header + "\n", 1)[1].splitlines()[1:]  # past the |---| line
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_builtin_event_types_and_schemas_are_listed() -> None:
    section = _section("Payload privacy")
    listed = {cells[0].strip("`"): cells[1] for cells in _table_rows(section, "| type | meaning |")}
    assert listed == dict(BUILTIN_TYPES)
    classes: dict[str, dict[str, Classification]] = {}
    for entity, name, fields in _table_rows(section, "| entity | class | fields |"):
        for path in re.findall(r"`([^`]+)`", fields):
            classes.setdefault(entity, {})[path] = Classification[name.strip("`")]
    assert classes == {entity: dict(rules) for entity, rules in BUILTIN_SCHEMAS.items()}
    for classification in Classification:
        assert f"* `{classification.name}`: " in section, classification


def test_python_snippets_import_the_modules_they_use() -> None:
    # Snippets may lean on names from the text around them (`client`, `handle`), never on an
    # unimported module.
    for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S):
        tree = ast.parse(block)
        imported = {
            (alias.asname or alias.name).split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        used = {
            node.value.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        }
        missing = (used & set(sys.stdlib_module_names)) - imported
        assert not missing, f"{sorted(missing)} used but not imported in:\n{block}"


def _hand_check(headers: dict[str, str], body: bytes, secret: str) -> bool:
    """Run the README's by-hand `webhook-signature` check; its `ok`."""
    section = _section("What an endpoint receives")
    (block,) = re.findall(r"```python\n(.*?)```", section, re.S)
    scope: dict[str, Any] = {"headers": headers, "body": body, "secret": secret}
    exec(block, scope)
    return bool(scope["ok"])


def test_the_hand_written_check_refuses_replays() -> None:
    secret = generate_secret()
    body = b'{"id":"evt_1"}'
    now = int(time.time())
    headers = delivery_headers([secret], "evt_1", "product.created", now, body)
    assert _hand_check(headers, body, secret)
    assert not _hand_check(headers, body + b" ", secret)
    assert not _hand_check(headers, body, generate_secret())
    stale = delivery_headers([secret], "evt_1", "product.created", now - 6 * 60, body)
    assert not _hand_check(stale, body, secret)
    # Stripped of the headers that carry the id and the time, it cannot pass.
    with pytest.raises(KeyError):
        _hand_check({"X-Webhook-Signature": headers["X-Webhook-Signature"]}, body, secret)


def test_the_ed25519_check_with_plain_cryptography_works_as_written() -> None:
    (block,) = re.findall(r"```python\n(.*?)```", _section("Ed25519 subscriptions"), re.S)
    private_key = generate_ed25519_private_key()
    body = b'{"id":"evt_1"}'
    headers = delivery_headers([private_key], "evt_1", "product.created", int(time.time()), body)
    public_key = ed25519_public_key(private_key)
    exec(block, {"headers": headers, "body": body, "public_key": public_key})
    with pytest.raises(InvalidSignature):
        exec(block, {"headers": headers, "body": body + b" ", "public_key": public_key})


SERVER_COMMANDS = ("serve", "dispatcher", "migrate", "secrets", "rotate-secret-key")


def test_every_client_command_shown_names_its_tenant() -> None:
    """The shell examples run against the open server of `make run`, where no tenant token
    stands in for `--tenant`: without it a command fails before calling (exit 2)."""
    blocks = re.findall(r"```(?:sh|bash)\n(.*?)```", README.read_text(), re.S)
    lines = [
        line.split("#", 1)[0].strip()
        for block in blocks
        for line in re.sub(r"\\\n\s*", " ", block).splitlines()
    ]
    commands = [
        line
        for line in lines
        if line.startswith("webhook-grpc ") and line.split()[1] not in SERVER_COMMANDS
    ]
    assert commands
    assert [c for c in commands if "--tenant" not in c.split()] == []
