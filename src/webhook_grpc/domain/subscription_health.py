"""How an endpoint has been doing: what the portal's endpoint list shows (SPEC §10)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from .models import Attempt


@dataclass(frozen=True)
class SubscriptionHealth:
    failure_window: timedelta
    attempt_count: int
    """Attempts in the failure window (since the last activation, when that is later)."""
    failed_count: int
    last_attempt: Attempt | None
