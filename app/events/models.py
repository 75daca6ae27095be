"""Funnel events: (time, name, tool, tool version, visitor, lead?, link?, platform, props)."""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column


class FunnelEvent(BigIntBase):
    """No foreign keys on purpose: the table is append-only and hot; deleting a lead or a
    visitor anonymises their events rather than cascading into this table."""

    __tablename__ = "funnel_event"
    __table_args__ = (
        Index("ix_funnel_event_tool_at", "tool_id", "at"),
        # The links page counts each link's clicks; partial, so only link_opened rows (a
        # small share of this hot table) pay for the index on insert.
        Index(
            "ix_funnel_event_link_opened",
            "link_id",
            postgresql_where=text("name = 'link_opened'"),
            sqlite_where=text("name = 'link_opened'"),
        ),
    )

    at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    name: Mapped[str] = mapped_column(String(32))
    tool_id: Mapped[int | None] = mapped_column(BigInteger)
    tool_version: Mapped[int | None] = mapped_column(Integer)
    visitor_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    lead_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    link_id: Mapped[int | None] = mapped_column(BigInteger)
    platform: Mapped[str] = mapped_column(String(16), default="browser")
    props: Mapped[dict] = mapped_column(JSON, default=dict)
