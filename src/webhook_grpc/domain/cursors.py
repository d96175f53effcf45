"""Feed cursors: opaque, tamper-evident and bound to one tenant (SPEC §3, Feed).

A cursor is url-safe base64 (no padding) of: version byte, `tx` and `seq` as unsigned 64-bit
big-endian, then the first 16 bytes of HMAC-SHA256(key, those 17 bytes + tenant id as UTF-8).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import struct
from dataclasses import dataclass
from typing import ClassVar, Final

from webhook_grpc.domain.errors import InvalidArgument

_VERSION: Final = 1
_POSITION = struct.Struct(">BQQ")
_MAC_BYTES: Final = 16
_CURSOR_BYTES: Final = _POSITION.size + _MAC_BYTES
# 33 bytes encode to exactly 44 characters with no spare bits, so each cursor has one spelling.
_CURSOR_RE = re.compile(r"[A-Za-z0-9_-]{44}")
_MAX_U64: Final = 2**64 - 1
_REFUSED = "cursor is malformed, was modified, or belongs to another tenant"


@dataclass(frozen=True, order=True)
class FeedPosition:
    """A place in a tenant's feed: after the event with this transaction key and sequence.

    `tx` orders commits (0 on SQLite, where commits are serial); `seq` is the row sequence.
    """

    tx: int
    seq: int

    START: ClassVar[FeedPosition]

    def __post_init__(self) -> None:
        if not (0 <= self.tx <= _MAX_U64 and 0 <= self.seq <= _MAX_U64):
            raise ValueError("feed position parts must be unsigned 64-bit integers")


FeedPosition.START = FeedPosition(0, 0)
START_POSITION: Final = FeedPosition.START
"""Before the first event of every feed."""


class CursorCodec:
    """Turns feed positions into cursors for one tenant and back, with a server-side key."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("cursor key must not be empty")
        # Keyed once: hmac.digest(key, ...) hashes the padded key again on every call, which
        # was most of a cursor's cost (the feed makes one per event).
        self._keyed = hmac.new(key, digestmod="sha256")

    def _mac(self, tenant_id: str, position_bytes: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(position_bytes + tenant_id.encode())
        return mac.digest()[:_MAC_BYTES]

    def encode(self, tenant_id: str, position: FeedPosition) -> str:
        """The cursor for `position` in `tenant_id`'s feed."""
        position_bytes = _POSITION.pack(_VERSION, position.tx, position.seq)
        raw = position_bytes + self._mac(tenant_id, position_bytes)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(self, tenant_id: str, cursor: str, field: str = "after_cursor") -> FeedPosition:
        """The position a cursor names; InvalidArgument unless this codec made it for the tenant."""
        if not _CURSOR_RE.fullmatch(cursor):
            raise InvalidArgument(field, _REFUSED)
        try:
            raw = base64.urlsafe_b64decode(cursor)
        except (binascii.Error, ValueError):
            raise InvalidArgument(field, _REFUSED) from None
        if len(raw) != _CURSOR_BYTES:
            raise InvalidArgument(field, _REFUSED)
        position_bytes, mac = raw[: _POSITION.size], raw[_POSITION.size :]
        if not hmac.compare_digest(mac, self._mac(tenant_id, position_bytes)):
            raise InvalidArgument(field, _REFUSED)
        version, tx, seq = _POSITION.unpack(position_bytes)
        if version != _VERSION:
            raise InvalidArgument(field, _REFUSED)
        return FeedPosition(tx, seq)
