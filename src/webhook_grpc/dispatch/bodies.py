"""Delivery bodies, encoded once per event and payload mode rather than once per delivery.

An event's deliveries to several subscriptions come in different lease batches as their lanes
refill, and each batch used to encode the same body again (JSON of the whole event, a fifth of
the dispatcher's own work per delivery besides HTTP). Each batch projects the event again with
the schema of the moment, so a body is reused only while the projected data is the same: a
field reclassified since publishing is gone from the next body. An event's other fields never
change once stored."""

from __future__ import annotations

from webhook_grpc.domain.models import Event, PayloadMode
from webhook_grpc.domain.payload import encode_body

# Enough for the bodies of a few lease batches of large events; the oldest go first.
BODY_CACHE_BYTES = 4 * 1024 * 1024


class BodyCache:
    """The most recently encoded bodies, up to `limit` bytes in all."""

    def __init__(self, limit: int = BODY_CACHE_BYTES) -> None:
        self._limit = limit
        self._size = 0
        self._bodies: dict[tuple[str, PayloadMode], tuple[Event, bytes]] = {}

    def body(self, event: Event, mode: PayloadMode) -> bytes:
        """The body of `event` in `mode` (SPEC §4), encoded unless it was for the same data."""
        key = (event.id, mode)
        cached = self._bodies.get(key)
        if cached is not None and (
            cached[0] is event
            or (cached[0].data == event.data and cached[0].previous == event.previous)
        ):
            return cached[1]
        body = encode_body(event, mode)
        if cached is not None:
            self._forget(key)
        while self._bodies and self._size + len(body) > self._limit:
            self._forget(next(iter(self._bodies)))
        if len(body) <= self._limit:
            self._bodies[key] = (event, body)
            self._size += len(body)
        return body

    def _forget(self, key: tuple[str, PayloadMode]) -> None:
        self._size -= len(self._bodies.pop(key)[1])

    @property
    def size(self) -> int:
        """Bytes of the bodies kept."""
        return self._size

    def __len__(self) -> int:
        return len(self._bodies)
