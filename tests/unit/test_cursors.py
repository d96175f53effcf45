from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook_grpc.domain.cursors import START_POSITION, CursorCodec, FeedPosition
from webhook_grpc.domain.errors import InvalidArgument

CODEC = CursorCodec(b"k" * 32)
REFUSED = "cursor is malformed, was modified, or belongs to another tenant"
u64 = st.integers(0, 2**64 - 1)
tenants = st.text(min_size=1, max_size=30)


def _refused(tenant_id: str, cursor: str, codec: CursorCodec = CODEC) -> bool:
    try:
        codec.decode(tenant_id, cursor)
    except InvalidArgument as error:
        assert error.field == "after_cursor"
        assert error.description == REFUSED
        return True
    return False


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_positions_order_by_tx_then_seq() -> None:
    assert FeedPosition(0, 5) < FeedPosition(1, 0) < FeedPosition(1, 1)
    assert FeedPosition.START == START_POSITION == FeedPosition(0, 0)
    assert min(FeedPosition(0, 1), START_POSITION) == START_POSITION


def test_positions_must_fit_in_64_bits() -> None:
    with pytest.raises(ValueError):
        FeedPosition(-1, 0)
    with pytest.raises(ValueError):
        FeedPosition(0, 2**64)


@given(tenant_id=tenants, tx=u64, seq=u64)
def test_round_trip(tenant_id: str, tx: int, seq: int) -> None:
    cursor = CODEC.encode(tenant_id, FeedPosition(tx, seq))
    assert CODEC.decode(tenant_id, cursor) == FeedPosition(tx, seq)


def test_cursor_is_url_safe_without_padding() -> None:
    cursor = CODEC.encode("acme", FeedPosition(2**64 - 1, 2**63))
    assert len(cursor) == 44
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_every_single_byte_change_is_refused() -> None:
    cursor = CODEC.encode("acme", FeedPosition(12345, 678))
    raw = base64.urlsafe_b64decode(cursor)
    for index in range(len(raw)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(raw)
            tampered[index] ^= mask
            assert _refused("acme", _b64(bytes(tampered))), (index, mask)


def test_every_single_character_change_is_refused() -> None:
    cursor = CODEC.encode("acme", FeedPosition(1, 2))
    for index, char in enumerate(cursor):
        replacement = "A" if char != "A" else "B"
        assert _refused("acme", cursor[:index] + replacement + cursor[index + 1 :]), index


@given(tx=u64, seq=u64, new_tx=u64, new_seq=u64)
def test_forged_positions_are_refused(tx: int, seq: int, new_tx: int, new_seq: int) -> None:
    raw = base64.urlsafe_b64decode(CODEC.encode("acme", FeedPosition(tx, seq)))
    forged = raw[:1] + new_tx.to_bytes(8, "big") + new_seq.to_bytes(8, "big") + raw[17:]
    if (new_tx, new_seq) != (tx, seq):
        assert _refused("acme", _b64(forged))


@given(tenant_id=tenants, other=tenants, tx=u64, seq=u64)
def test_another_tenants_cursor_is_refused(tenant_id: str, other: str, tx: int, seq: int) -> None:
    cursor = CODEC.encode(tenant_id, FeedPosition(tx, seq))
    if other != tenant_id:
        assert _refused(other, cursor)


def test_another_keys_cursor_is_refused() -> None:
    cursor = CursorCodec(b"other key").encode("acme", FeedPosition(1, 1))
    assert _refused("acme", cursor)


def test_unknown_version_is_refused_even_with_a_valid_mac() -> None:
    body = bytes([2]) + (1).to_bytes(8, "big") + (1).to_bytes(8, "big")
    mac = hmac.new(b"k" * 32, body + b"acme", hashlib.sha256).digest()[:16]
    assert _refused("acme", _b64(body + mac))


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "abc",
        "not a cursor at all, not a cursor at all!!!",
        "=" * 44,
        "A" * 43,
        "A" * 45,
        "A" * 44,
        "é" * 44,
    ],
)
def test_garbage_is_refused(cursor: str) -> None:
    assert _refused("acme", cursor)


def test_padded_or_standard_alphabet_spellings_are_refused() -> None:
    cursor = next(
        c
        for seq in range(1000)
        if "-" in (c := CODEC.encode("acme", FeedPosition(0, seq))) or "_" in c
    )
    assert _refused("acme", cursor + "=")
    assert _refused("acme", cursor.replace("-", "+").replace("_", "/"))


@given(st.text(max_size=60))
def test_decode_only_raises_invalid_argument(cursor: str) -> None:
    _refused("acme", cursor)


def test_custom_field_name() -> None:
    with pytest.raises(InvalidArgument) as caught:
        CODEC.decode("acme", "x", field="cursor")
    assert caught.value.field == "cursor"


def test_empty_key_is_refused() -> None:
    with pytest.raises(ValueError):
        CursorCodec(b"")
