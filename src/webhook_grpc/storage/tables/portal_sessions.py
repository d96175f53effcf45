"""Consumer portal sessions: a one-time link, then the session it was exchanged for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UtcDateTime


class PortalSessionRow(Base):
    __tablename__ = "portal_sessions"

    # SHA-256 (hex) of the one-time link token; the token itself is never stored.
    link_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # SHA-256 (hex) of the session cookie, set when the link is used.
    session_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
