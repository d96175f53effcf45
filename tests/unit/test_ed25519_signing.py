"""Ed25519 delivery signatures (SPEC §12): the shared vector, and an independent check with
plain `cryptography`."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.support.signatures import ed25519_valid
from webhook_grpc.domain.signing import (
    OVERVIEW_SIGNATURE_HEADER,
    STANDARD_SIGNATURE_HEADER,
    ed25519_public_key,
    generate_ed25519_private_key,
    generate_secret,
    signature_headers,
)

VECTOR = json.loads((Path(__file__).parent.parent / "vectors" / "ed25519.json").read_text())


def test_the_shared_vector() -> None:
    assert ed25519_public_key(VECTOR["private_key"]) == VECTOR["public_key"]
    headers = signature_headers(
        [VECTOR["private_key"]], VECTOR["id"], VECTOR["timestamp"], VECTOR["body"].encode()
    )
    assert headers == {STANDARD_SIGNATURE_HEADER: VECTOR["signature"]}


def test_ed25519_keys_sign_v1a_only_and_no_body_only_header() -> None:
    private_key = generate_ed25519_private_key()
    headers = signature_headers([private_key], "msg_1", 1700000000, b'{"a": 1}')
    assert OVERVIEW_SIGNATURE_HEADER not in headers
    [signature] = headers[STANDARD_SIGNATURE_HEADER].split(" ")
    assert signature.startswith("v1a,")
    public_key = ed25519_public_key(private_key)
    assert ed25519_valid(public_key, signature, "msg_1", 1700000000, b'{"a": 1}')
    assert not ed25519_valid(public_key, signature, "msg_1", 1700000001, b'{"a": 1}')


def test_rotation_signs_with_both_key_pairs_current_first() -> None:
    new, old = generate_ed25519_private_key(), generate_ed25519_private_key()
    headers = signature_headers([new, old], "msg_1", 1700000000, b"{}")
    first, second = headers[STANDARD_SIGNATURE_HEADER].split(" ")
    assert ed25519_valid(ed25519_public_key(new), first, "msg_1", 1700000000, b"{}")
    assert ed25519_valid(ed25519_public_key(old), second, "msg_1", 1700000000, b"{}")


def test_a_private_key_is_the_base64_seed() -> None:
    private_key = generate_ed25519_private_key()
    assert private_key.startswith("whsk_")
    assert len(base64.b64decode(private_key.removeprefix("whsk_"))) == 32
    assert generate_secret() != private_key
