"""The dispatcher's opened signing keys (dispatch/dispatcher.py `OpenedKeys`): opened once per
subscription and sealed value, opened anew when the stored secret changes."""

from __future__ import annotations

import pytest

from webhook_grpc.dispatch.dispatcher import OpenedKeys
from webhook_grpc.domain.signing import SigningKeys
from webhook_grpc.encryption import SealedSecretError, SecretBox, generate_key, parse_key


class CountingBox(SecretBox):
    """A real box that counts what it opens."""

    opened = 0

    def open(self, sealed: str, subscription_id: str) -> str:
        self.opened += 1
        return super().open(sealed, subscription_id)


def sealed(box: SecretBox, secret: str, subscription_id: str) -> SigningKeys:
    return SigningKeys(box.seal(secret, subscription_id), None, None)


def test_keys_are_opened_once_per_sealed_value_and_again_when_it_changes() -> None:
    box = CountingBox([parse_key(generate_key())])
    keys = OpenedKeys(box)
    first = sealed(box, "whsec_a", "sub_1")
    assert keys.open("sub_1", first).secret == "whsec_a"
    assert keys.open("sub_1", first).secret == "whsec_a"
    assert box.opened == 1
    rotated = sealed(box, "whsec_b", "sub_1")  # a new secret: a new sealed value
    assert keys.open("sub_1", rotated).secret == "whsec_b"
    assert box.opened == 2
    # Another subscription's row moved over is not trusted because it was opened before.
    with pytest.raises(SealedSecretError):
        keys.open("sub_2", first)


def test_the_oldest_subscription_is_forgotten_beyond_the_size() -> None:
    box = CountingBox([parse_key(generate_key())])
    keys = OpenedKeys(box, size=2)
    rows = {s: sealed(box, f"whsec_{s}", s) for s in ("s1", "s2", "s3")}
    for subscription_id, row in rows.items():
        keys.open(subscription_id, row)
    assert box.opened == 3
    keys.open("s3", rows["s3"])
    assert box.opened == 3
    keys.open("s1", rows["s1"])  # forgotten when s3 came
    assert box.opened == 4
