"""Deliveries (the work queue) and their attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigIntKey, UtcDateTime

LEASED = "lease_token IS NOT NULL AND status = 'pending'"


class DeliveryRow(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        # The dispatcher's queue: only pending rows, by due time.
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # A subscription's deliveries by status; its pending ones in feed order (the FIFO head).
        Index(
            "ix_deliveries_subscription_feed", "subscription_id", "status", "event_tx", "event_seq"
        ),
        # The deliveries leased now (or whose lease expired unrecorded): few, whatever the backlog.
        Index(
            "ix_deliveries_leased",
            "subscription_id",
            sqlite_where=text(LEASED),
            postgresql_where=text(LEASED),
        ),
        Index("ix_deliveries_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    subscription_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(128))
    # The event's feed position (events.tx, seq), copied so that an index orders a
    # subscription's deliveries in feed order.
    event_tx: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    event_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(16))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    # While pending: when the next attempt is due. A lease moves it forward by the lease duration,
    # so work held by a crashed dispatcher becomes due again by itself.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AttemptRow(Base):
    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_subscription_time", "subscription_id", "attempted_at"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    subscription_id: Mapped[str] = mapped_column(String(40))
    attempt_number: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error_message: Mapped[str] = mapped_column(Text, default="")
    response_body: Mapped[str] = mapped_column(Text, default="")
