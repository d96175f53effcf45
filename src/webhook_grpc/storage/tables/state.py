"""Small shared state of the service: keys and watermarks every process must agree on."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class ServiceStateRow(Base):
    __tablename__ = "service_state"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
