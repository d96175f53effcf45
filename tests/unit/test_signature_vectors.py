"""The signature vectors in tests/vectors/: what scripts/gen_signature_vectors.py writes, checked
independently of the code that signed them (plain `cryptography` Ed25519)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from scripts.gen_signature_vectors import build, render
from webhook_grpc.domain.signing import (
    ed25519_public_key,
    ed25519_signature,
    generate_ed25519_private_key,
)

VECTORS = Path(__file__).parent.parent / "vectors"
ED25519 = json.loads((VECTORS / "ed25519.json").read_text())


def signed_message(vector: dict[str, object]) -> bytes:
    return f"{vector['id']}.{vector['timestamp']}.{vector['body']}".encode()


def test_the_committed_vectors_are_what_the_script_writes() -> None:
    for name, content in build().items():
        assert (VECTORS / name).read_text() == render(content), (
            f"tests/vectors/{name} is stale: run python -m scripts.gen_signature_vectors"
        )


def test_the_ed25519_vector_verifies_with_plain_cryptography() -> None:
    assert ED25519["public_key"].startswith("whpk_")
    assert ED25519["signature"].startswith("v1a,")
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(ED25519["public_key"][5:]))
    signature = base64.b64decode(ED25519["signature"][4:])
    public.verify(signature, signed_message(ED25519))
    with pytest.raises(InvalidSignature):
        public.verify(signature, signed_message({**ED25519, "timestamp": 1614265331}))


def test_the_ed25519_public_key_belongs_to_the_private_key() -> None:
    seed = base64.b64decode(ED25519["private_key"].removeprefix("whsk_"))
    private = Ed25519PrivateKey.from_private_bytes(seed)
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert ED25519["public_key"] == "whpk_" + base64.b64encode(raw).decode()
    # Ed25519 is deterministic: the same key signs the same message the same way.
    signature = private.sign(signed_message(ED25519))
    assert ED25519["signature"] == "v1a," + base64.b64encode(signature).decode()


def test_a_new_key_signs_what_its_public_key_verifies() -> None:
    private_key = generate_ed25519_private_key()
    assert private_key.startswith("whsk_")
    assert generate_ed25519_private_key() != private_key
    public_key = ed25519_public_key(private_key)
    signature = ed25519_signature(private_key, "evt_1", 1700000000, b'{"a": 1}')
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    public.verify(base64.b64decode(signature.removeprefix("v1a,")), b'evt_1.1700000000.{"a": 1}')
    with pytest.raises(ValueError, match="whsk_"):
        ed25519_signature(public_key, "evt_1", 1700000000, b"{}")
