"""Write the signature test vectors both SDKs' tests read (tests/vectors/).

* ``ed25519.json``: the Standard Webhooks test message signed ``v1a`` with a fixed Ed25519 key.
* ``verification.json``: the reasons `verify` gives for a refusal (the same words in Python and
  TypeScript), and cases that both SDKs' `verify` must decide the same way: a header set, a body,
  a key, the current time and options, and the expected outcome (``"ok"``, a reason, or
  ``"invalid_key"`` for a key that is itself malformed).

Run with ``.venv/bin/python -m scripts.gen_signature_vectors``. Ed25519 signatures are
deterministic, so a run writes the same files again; tests/unit/test_signature_vectors.py fails
when the committed files differ from what this script writes, and checks the Ed25519 vector with
`cryptography` directly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from webhook_grpc.domain.signing import (
    PRIVATE_KEY_PREFIX,
    ed25519_public_key,
    ed25519_signature,
    overview_signature,
    standard_signature,
)

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors"

REASONS = {
    "missing_signature": "No signature header this call accepts: webhook-signature is missing "
    "(X-Webhook-Signature alone counts only when the caller allows the body-only scheme).",
    "missing_header": "webhook-id or webhook-timestamp is missing (webhook-signature signs both).",
    "invalid_timestamp": "webhook-timestamp is not unix seconds.",
    "timestamp_too_old": "webhook-timestamp is older than the tolerance: a replay, or a clock "
    "out of sync.",
    "timestamp_in_future": "webhook-timestamp is ahead by more than the tolerance: a clock out "
    "of sync.",
    "bad_signature": "No signature in the header matches this body and key.",
}


def _fixed_private_key(label: str) -> str:
    # A fixed seed, so the vectors are the same on every run.
    seed = hashlib.sha256(f"webhook-grpc test vector {label}".encode()).digest()
    return PRIVATE_KEY_PREFIX + base64.b64encode(seed).decode("ascii")


def ed25519_vector(standard: dict[str, Any]) -> dict[str, Any]:
    """The Standard Webhooks test message (id, timestamp, body) signed with a fixed Ed25519 key."""
    private_key = _fixed_private_key("key 1")
    return {
        "_source": "Written by scripts/gen_signature_vectors.py: the Standard Webhooks test "
        "message signed v1a (Ed25519 over {id}.{timestamp}.{body}, SPEC §12) with a fixed key.",
        "id": standard["id"],
        "private_key": private_key,
        "public_key": ed25519_public_key(private_key),
        "timestamp": standard["timestamp"],
        "body": standard["body"],
        "signature": ed25519_signature(
            private_key, standard["id"], standard["timestamp"], standard["body"].encode()
        ),
    }


def _case(
    name: str,
    headers: dict[str, str],
    body: str,
    key: str,
    now: int,
    expect: str,
    **options: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "headers": [[header, value] for header, value in headers.items()],
        "body": body,
        "key": key,
        "now": now,
        **options,
        "expect": expect,
    }


def verification_cases(standard: dict[str, Any], ed25519: dict[str, Any]) -> list[dict[str, Any]]:
    """Every case both SDKs' `verify` must decide the same way."""
    msg_id, ts, body = standard["id"], standard["timestamp"], standard["body"]
    secret, public_key = standard["secret"], ed25519["public_key"]
    other_public_key = ed25519_public_key(_fixed_private_key("key 2"))
    hmac_sig, ed_sig = standard["signature"], ed25519["signature"]
    overview = overview_signature(secret, body.encode())

    def signed(signature: str, **extra: str) -> dict[str, str]:
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": signature,
            **extra,
        }

    # The attack an HMAC fallback on a public key would allow: the key is public, so anyone can
    # compute an HMAC keyed with it.
    public_bytes = base64.b64decode(public_key.removeprefix("whpk_"))
    signed_message = f"{msg_id}.{ts}.{body}".encode()
    hmac_with_public_key = "v1," + base64.b64encode(
        hmac.digest(public_bytes, signed_message, "sha256")
    ).decode("ascii")
    other_v1 = standard_signature(
        "whsec_" + base64.b64encode(bytes(32)).decode("ascii"), msg_id, ts, body.encode()
    )
    stripped = {"Content-Type": "application/json", "X-Webhook-Signature": overview}

    return [
        _case("hmac: the Standard Webhooks vector", signed(hmac_sig), body, secret, ts, "ok"),
        _case(
            "hmac: header names in any case",
            {"Webhook-Id": msg_id, "WEBHOOK-TIMESTAMP": str(ts), "Webhook-Signature": hmac_sig},
            body,
            secret,
            ts,
            "ok",
        ),
        _case(
            "hmac: one match in a rotation list is enough",
            signed(f"{other_v1} {ed_sig} {hmac_sig}"),
            body,
            secret,
            ts,
            "ok",
        ),
        _case(
            "hmac: a changed body",
            signed(hmac_sig),
            body.replace("2432232314", "2432232315"),
            secret,
            ts,
            "bad_signature",
        ),
        _case(
            "hmac: a changed webhook-id (it is signed)",
            {**signed(hmac_sig), "webhook-id": "msg_other"},
            body,
            secret,
            ts,
            "bad_signature",
        ),
        _case(
            "hmac: another secret's signature", signed(other_v1), body, secret, ts, "bad_signature"
        ),
        _case("hmac: an empty signature", signed("v1,"), body, secret, ts, "bad_signature"),
        _case("hmac: exactly the tolerance old", signed(hmac_sig), body, secret, ts + 300, "ok"),
        _case(
            "hmac: older than the tolerance (a replay)",
            signed(hmac_sig),
            body,
            secret,
            ts + 301,
            "timestamp_too_old",
        ),
        _case(
            "hmac: further ahead than the tolerance",
            signed(hmac_sig),
            body,
            secret,
            ts - 301,
            "timestamp_in_future",
        ),
        _case(
            "hmac: a longer tolerance",
            signed(hmac_sig),
            body,
            secret,
            ts + 3600,
            "ok",
            tolerance_seconds=7200,
        ),
        _case(
            "hmac: a fractional timestamp",
            {**signed(hmac_sig), "webhook-timestamp": f"{ts}.5"},
            body,
            secret,
            ts,
            "invalid_timestamp",
        ),
        _case(
            "hmac: a signed timestamp",
            {**signed(hmac_sig), "webhook-timestamp": f"+{ts}"},
            body,
            secret,
            ts,
            "invalid_timestamp",
        ),
        _case(
            "hmac: no webhook-id",
            {"webhook-timestamp": str(ts), "webhook-signature": hmac_sig},
            body,
            secret,
            ts,
            "missing_header",
        ),
        _case(
            "hmac: no webhook-timestamp",
            {"webhook-id": msg_id, "webhook-signature": hmac_sig},
            body,
            secret,
            ts,
            "missing_header",
        ),
        _case(
            "no signature header at all",
            {"Content-Type": "application/json"},
            body,
            secret,
            ts,
            "missing_signature",
        ),
        _case(
            "webhook-* headers stripped: refused by default (replay by downgrade)",
            stripped,
            body,
            secret,
            ts,
            "missing_signature",
        ),
        _case(
            "webhook-* headers stripped: accepted when the body-only scheme is allowed",
            stripped,
            body,
            secret,
            ts,
            "ok",
            allow_body_only=True,
        ),
        _case(
            "body-only scheme allowed: a changed body",
            stripped,
            body + " ",
            secret,
            ts,
            "bad_signature",
            allow_body_only=True,
        ),
        _case(
            "body-only scheme allowed: webhook-signature still decides when present",
            signed(hmac_sig, **{"X-Webhook-Signature": overview}),
            body,
            secret,
            ts + 86400,
            "timestamp_too_old",
            allow_body_only=True,
        ),
        _case("ed25519: the v1a vector", signed(ed_sig), body, public_key, ts, "ok"),
        _case(
            "ed25519: one match in a rotation list is enough",
            signed(f"{hmac_sig} v1a,{base64.b64encode(bytes(64)).decode()} {ed_sig}"),
            body,
            public_key,
            ts,
            "ok",
        ),
        _case(
            "ed25519: a changed body",
            signed(ed_sig),
            body.replace("2432232314", "2432232315"),
            public_key,
            ts,
            "bad_signature",
        ),
        _case(
            "ed25519: another public key",
            signed(ed_sig),
            body,
            other_public_key,
            ts,
            "bad_signature",
        ),
        _case(
            "ed25519: a malformed v1a signature",
            signed("v1a,not-base64! v1a,AAAA"),
            body,
            public_key,
            ts,
            "bad_signature",
        ),
        _case(
            "ed25519: older than the tolerance",
            signed(ed_sig),
            body,
            public_key,
            ts + 301,
            "timestamp_too_old",
        ),
        _case(
            "no algorithm confusion: an HMAC secret never accepts a v1a signature",
            signed(ed_sig),
            body,
            secret,
            ts,
            "bad_signature",
        ),
        _case(
            "no algorithm confusion: an HMAC secret never accepts its own HMAC labelled v1a",
            signed(hmac_sig.replace("v1,", "v1a,")),
            body,
            secret,
            ts,
            "bad_signature",
        ),
        _case(
            "no algorithm confusion: a public key never accepts a v1 signature",
            signed(hmac_sig),
            body,
            public_key,
            ts,
            "bad_signature",
        ),
        _case(
            "no algorithm confusion: a public key never accepts an HMAC keyed with itself",
            signed(hmac_with_public_key),
            body,
            public_key,
            ts,
            "bad_signature",
        ),
        _case(
            "ed25519: X-Webhook-Signature alone cannot be checked with a public key",
            stripped,
            body,
            public_key,
            ts,
            "missing_signature",
            allow_body_only=True,
        ),
        _case(
            "a secret that is not base64",
            signed(hmac_sig),
            body,
            "whsec_not base64!",
            ts,
            "invalid_key",
        ),
        _case(
            "a public key of the wrong length",
            signed(ed_sig),
            body,
            "whpk_" + base64.b64encode(bytes(31)).decode(),
            ts,
            "invalid_key",
        ),
        _case(
            "the private key instead of the public one",
            signed(ed_sig),
            body,
            ed25519["private_key"],
            ts,
            "invalid_key",
        ),
    ]


def build() -> dict[str, dict[str, Any]]:
    """The files to write, by name."""
    standard = json.loads((VECTORS / "standard_webhooks.json").read_text())
    ed25519 = ed25519_vector(standard)
    verification = {
        "_source": "Written by scripts/gen_signature_vectors.py; read by the Python and the "
        "TypeScript tests of verify, which must decide every case the same way.",
        "default_tolerance_seconds": 300,
        "reasons": REASONS,
        "cases": verification_cases(standard, ed25519),
    }
    return {"ed25519.json": ed25519, "verification.json": verification}


def render(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for name, content in build().items():
        (VECTORS / name).write_text(render(content))
        print(f"wrote tests/vectors/{name}")


if __name__ == "__main__":
    main()
