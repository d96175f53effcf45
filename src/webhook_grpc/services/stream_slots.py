"""The capacity of feed streams: how many a tenant, and the process, may hold open at once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from webhook_grpc.domain.errors import LimitExceeded


class StreamSlots:
    """Open StreamEvents calls, counted per tenant and in all. A stream costs the server a
    connection slot and a batch of memory for as long as it lasts, whether its client reads
    or not, so each tenant gets at most `per_tenant` and the process at most `total`."""

    def __init__(self, per_tenant: int, total: int) -> None:
        self._per_tenant = per_tenant
        self._total = total
        self._open: Counter[str] = Counter()

    @contextmanager
    def hold(self, tenant_id: str) -> Iterator[None]:
        """A slot for one stream of `tenant_id`, released however the stream ends; raises
        LimitExceeded when none is free."""
        if self._open[tenant_id] >= self._per_tenant:
            raise LimitExceeded(
                f"tenant {tenant_id!r} already has {self._per_tenant} feed streams open "
                "(max_streams_per_tenant); close one, or page with ListEvents"
            )
        if self.open() >= self._total:
            raise LimitExceeded(
                f"this server already serves {self._total} feed streams (max_streams); "
                "retry later with backoff"
            )
        self._open[tenant_id] += 1
        try:
            yield
        finally:
            self._open[tenant_id] -= 1
            if not self._open[tenant_id]:
                del self._open[tenant_id]

    def open(self, tenant_id: str | None = None) -> int:
        """Streams open now: of `tenant_id`, or of every tenant."""
        return self._open[tenant_id] if tenant_id is not None else self._open.total()
