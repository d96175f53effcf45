"""A clock a test moves by hand, for the App's injectable clock (`start_server(clock=...)`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class MovableClock:
    """Stands still until moved, so nothing becomes due on its own while a test looks."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> datetime:
        self.now += by
        return self.now
