"""Ed25519 delivery signatures (SPEC §12): the shared vector, and an independent check with
plain `cryptography`; the overview's X-Webhook-Signature keyed with the shared secret beside it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.support.signatures import ed25519_valid, overview_signature
from webhook_grpc.domain.signing import (
    OVERVIEW_SIGNATURE_HEADER,
    STANDARD_SIGNATURE_HEADER,
    ed25519_public_key,
    ed25519_signing_key,
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


def test_an_ed25519_signing_key_signs_v1a_and_the_body_only_hmac_with_its_secret() -> None:
    private_key, secret = generate_ed25519_private_key(), generate_secret()
    body = b'{"a": 1}'
    headers = signature_headers(
        [ed25519_signing_key(private_key, secret)], "msg_1", 1700000000, body
    )
    [signature] = headers[STANDARD_SIGNATURE_HEADER].split(" ")  # v1a only, no v1
    assert signature.startswith("v1a,")
    public_key = ed25519_public_key(private_key)
    assert ed25519_valid(public_key, signature, "msg_1", 1700000000, body)
    assert not ed25519_valid(public_key, signature, "msg_1", 1700000001, body)
    assert headers[OVERVIEW_SIGNATURE_HEADER] == overview_signature(secret, body)


def test_a_lone_private_key_signs_v1a_only() -> None:
    # A previous key rotated away before Ed25519 subscriptions had a shared secret (0006).
    private_key = generate_ed25519_private_key()
    headers = signature_headers([private_key], "msg_1", 1700000000, b'{"a": 1}')
    assert OVERVIEW_SIGNATURE_HEADER not in headers
    [signature] = headers[STANDARD_SIGNATURE_HEADER].split(" ")
    assert ed25519_valid(
        ed25519_public_key(private_key), signature, "msg_1", 1700000000, b'{"a": 1}'
    )


def test_rotation_signs_with_both_key_pairs_and_both_secrets_current_first() -> None:
    new, old = generate_ed25519_private_key(), generate_ed25519_private_key()
    new_secret, old_secret = generate_secret(), generate_secret()
    keys = [ed25519_signing_key(new, new_secret), ed25519_signing_key(old, old_secret)]
    headers = signature_headers(keys, "msg_1", 1700000000, b"{}")
    first, second = headers[STANDARD_SIGNATURE_HEADER].split(" ")
    assert ed25519_valid(ed25519_public_key(new), first, "msg_1", 1700000000, b"{}")
    assert ed25519_valid(ed25519_public_key(old), second, "msg_1", 1700000000, b"{}")
    assert headers[OVERVIEW_SIGNATURE_HEADER] == (
        f"{overview_signature(new_secret, b'{}')} {overview_signature(old_secret, b'{}')}"
    )


def test_rotation_from_a_lone_private_key_keeps_both_v1a_and_the_new_secret() -> None:
    new, old, secret = (
        generate_ed25519_private_key(),
        generate_ed25519_private_key(),
        generate_secret(),
    )
    headers = signature_headers([ed25519_signing_key(new, secret), old], "m", 1, b"{}")
    first, second = headers[STANDARD_SIGNATURE_HEADER].split(" ")
    assert ed25519_valid(ed25519_public_key(new), first, "m", 1, b"{}")
    assert ed25519_valid(ed25519_public_key(old), second, "m", 1, b"{}")
    assert headers[OVERVIEW_SIGNATURE_HEADER] == overview_signature(secret, b"{}")


def test_a_private_key_is_the_base64_seed() -> None:
    private_key = generate_ed25519_private_key()
    assert private_key.startswith("whsk_")
    assert len(base64.b64decode(private_key.removeprefix("whsk_"))) == 32
    assert generate_secret() != private_key
