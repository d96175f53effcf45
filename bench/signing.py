"""Micro-benchmark of delivery signing and of opening a secret sealed at rest (SPEC §12).

Usage: python -m bench.signing [--runs N]

`ed25519_sign_us` and `hmac_sign_us` are µs per attempt's signature headers for a typical
body (Ed25519: `v1a` and the shared secret's `X-Webhook-Signature`, SPEC §12);
`secret_open_us` is µs per AES-GCM decryption, which the dispatcher pays once per lease batch and
subscription, not per attempt.
"""

from __future__ import annotations

import argparse
import json

from bench.filters import micros
from bench.sample_event import PRODUCT
from webhook_grpc.domain.signing import (
    ed25519_signing_key,
    generate_ed25519_private_key,
    generate_secret,
    signature_headers,
)
from webhook_grpc.encryption import SecretBox, generate_key, parse_key

BODY = json.dumps({"id": "evt_1", "type": "product.price_changed", "data": PRODUCT}).encode()


def signing_figures(runs: int = 20_000) -> dict[str, float]:
    secret = generate_secret()
    signing_key = ed25519_signing_key(generate_ed25519_private_key(), generate_secret())
    box = SecretBox([parse_key(generate_key())])
    sealed = box.seal(secret, "sub_1")
    return {
        "ed25519_sign_us": micros(
            runs, lambda: signature_headers([signing_key], "evt_1", 1764460800, BODY)
        ),
        "hmac_sign_us": micros(
            runs, lambda: signature_headers([secret], "evt_1", 1764460800, BODY)
        ),
        "secret_open_us": micros(runs, lambda: box.open(sealed, "sub_1")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.signing")
    parser.add_argument("--runs", type=int, default=20_000)
    for key, value in signing_figures(parser.parse_args().runs).items():
        print(f"{key:26} {value:10.2f}")


if __name__ == "__main__":
    main()
