"""Anonymous visitors, known by a signed cookie, with first- and last-touch attribution."""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column


class Visitor(BigIntBase):
    __tablename__ = "visitor"

    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    platform: Mapped[str] = mapped_column(String(16))  # douyin | wechat | browser
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    first_seen_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    first_link_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tracked_link.id", ondelete="SET NULL"), index=True
    )
    first_src: Mapped[str] = mapped_column(String(64), default="")
    first_touch: Mapped[dict] = mapped_column(JSON, default=dict)
    last_link_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tracked_link.id", ondelete="SET NULL")
    )
    last_src: Mapped[str] = mapped_column(String(64), default="")
    last_touch: Mapped[dict] = mapped_column(JSON, default=dict)
    lead_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("lead.id", ondelete="SET NULL"), index=True
    )
    # The column keeps its first (American) spelling: renaming it would need a migration.
    authorised_at: Mapped[dt.datetime | None] = mapped_column(
        "authorized_at", DateTimeUTC(timezone=True)
    )
    auth_method: Mapped[str] = mapped_column(String(16), default="")
