"""Tools (published lead magnets) and their immutable versions."""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.base import BigIntAuditBase, BigIntBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column


class Tool(BigIntAuditBase):
    __tablename__ = "tool"

    slug: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # calculator | guide | grab | draw
    title: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft|published|archived
    current_version: Mapped[int | None] = mapped_column(Integer)
    draft: Mapped[dict] = mapped_column(JSON, default=dict)


class ToolVersion(BigIntBase):
    """Frozen at publish; everything a visitor produced records the version it used."""

    __tablename__ = "tool_version"
    __table_args__ = (UniqueConstraint("tool_id", "number"),)

    tool_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tool.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict] = mapped_column(JSON)
    published_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    published_by: Mapped[str] = mapped_column(String(64), default="")


class Submission(BigIntBase):
    """What a visitor entered in a tool and what it answered, with the version used. Linked to
    the lead when the visitor authorises a phone; replayed against drafts in the editor."""

    __tablename__ = "submission"
    __table_args__ = (Index("ix_submission_tool_at", "tool_id", "created_at"),)

    tool_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tool.id", ondelete="CASCADE"))
    tool_version: Mapped[int] = mapped_column(Integer)
    visitor_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("visitor.id", ondelete="SET NULL"), index=True
    )
    lead_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("lead.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    inputs: Mapped[dict] = mapped_column(JSON)
    outputs: Mapped[dict] = mapped_column(JSON)
    # Human-readable answers (field label → shown value) for the lead page.
    summary: Mapped[dict] = mapped_column(JSON, default=dict)


class ScheduledTool:
    """The columns a scheduled kind's table (grabs, draws) starts with: one row per tool, open
    between ``starts_at`` and ``ends_at`` unless a host overrides the schedule (``mode``)."""

    tool_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tool.id", ondelete="CASCADE"), unique=True
    )
    image_url: Mapped[str] = mapped_column(String(512), default="")
    starts_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    ends_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # "schedule": open between starts_at and ends_at; "open"/"closed": the host's override.
    mode: Mapped[str] = mapped_column(String(16), default="schedule")
