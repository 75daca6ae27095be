"""Tables shared by every feature: the audit trail and SQL rate-limit counters."""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.base import BigIntBase, orm_registry
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, BigInteger, Column, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column


class AuditEntry(BigIntBase):
    """Who did what to which item, for staff actions that must be accountable."""

    __tablename__ = "audit_entry"

    at: Mapped[dt.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=lambda: dt.datetime.now(dt.UTC), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    actor_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(64), default="")


# A plain table: fixed-window counters keyed by (key, window start); upserted atomically.
rate_counter = Table(
    "rate_counter",
    orm_registry.metadata,
    Column("key", String(200), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)
