"""Events: the projected domain events, in feed order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigIntKey, UtcDateTime


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_feed", "tenant_id", "tx", "seq"),
        Index("ix_events_published_at", "published_at"),
        Index(
            "uq_events_idempotency",
            "tenant_id",
            "idempotency_key",
            unique=True,
            sqlite_where=text("idempotency_key IS NOT NULL"),
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    seq: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    # Feed order is (tx, seq). On PostgreSQL tx is the writing transaction's id, so readers can
    # hold back rows of transactions that may still commit (docs/FEED_ORDERING.md); 0 on SQLite.
    tx: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    id: Mapped[str] = mapped_column(String(40), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(128))
    entity_id: Mapped[str] = mapped_column(String(256))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    previous: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(256), nullable=True)
    # The publisher's W3C trace context (domain/trace_context.py's text form), or NULL.
    trace_context: Mapped[str | None] = mapped_column(Text, nullable=True)
    # domain/projection.py's rules_version of the rules `data` and `previous` were projected
    # with; readers skip projecting again while the entity's rules give the same version.
    rules_version: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
