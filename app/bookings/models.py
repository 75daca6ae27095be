"""A visitor's booking: one per lead and tool, with the slot they prefer and a note."""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.base import BigIntAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column


class Booking(BigIntAuditBase):
    """What a visitor asked for through a tool's call to action. One row per lead and tool: a
    double tap or a race is one booking (the unique key), and booking again after cancelling
    opens the same row again. The lead's timeline keeps each step as an event."""

    __tablename__ = "booking"
    __table_args__ = (
        UniqueConstraint("lead_id", "tool_id"),
        # The sales inbox: open bookings, newest first.
        Index("ix_booking_state_booked_at", "state", "booked_at"),
    )

    lead_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("lead.id", ondelete="CASCADE"))
    tool_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tool.id", ondelete="CASCADE"), index=True
    )
    tool_version: Mapped[int] = mapped_column(Integer)
    visitor_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("visitor.id", ondelete="SET NULL")
    )
    # What the booking is for, as the tool named it when it was made ("免费量房").
    service: Mapped[str] = mapped_column(String(64))
    slot_day: Mapped[dt.date] = mapped_column(Date)
    slot_part: Mapped[str] = mapped_column(String(16))  # morning | afternoon | evening
    note: Mapped[str] = mapped_column(String(800), default="")
    state: Mapped[str] = mapped_column(String(16), default="new")  # new|contacted|cancelled
    booked_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    contacted_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    contacted_by: Mapped[str] = mapped_column(String(64), default="")
