"""Subscriptions: a tenant's endpoint, its patterns, secrets and status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UtcDateTime

# Subscriptions under delivery controls: FIFO ordering or a rate limit.
CONTROLLED = "ordering = 'fifo' OR rate_limit_per_second > 0"


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        Index("ix_subscriptions_tenant_status", "tenant_id", "status"),
        Index("ix_subscriptions_tenant_created", "tenant_id", "created_at", "id"),
        # The few subscriptions whose deliveries the lease takes one by one (SPEC §11).
        Index(
            "ix_subscriptions_controlled",
            "id",
            sqlite_where=text(CONTROLLED),
            postgresql_where=text(CONTROLLED),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(Text)
    event_patterns: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    disabled_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    payload_mode: Mapped[str] = mapped_column(String(8))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    # Sealed (encryption/box.py): an HMAC secret or an Ed25519 private key, never plain text.
    secret: Mapped[str] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    signing_algorithm: Mapped[str] = mapped_column(String(16), server_default="hmac_sha256")
    # Ed25519 only: the public key receivers verify with ("whpk_…").
    public_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Attempts before this instant do not count towards auto-disable (set on activation).
    failure_window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    filter: Mapped[str] = mapped_column(Text, default="", server_default="")
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    ordering: Mapped[str] = mapped_column(String(16), server_default=text("'unordered'"))
    rate_limit_per_second: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # The rate limit's GCRA state (domain/rate_limit.py): no attempt starts before it.
    next_slot_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
