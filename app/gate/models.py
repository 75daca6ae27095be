"""One-time codes for the SQL store (the embedded default; Redis carries them in production)."""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column


class OtpCode(BigIntBase):
    __tablename__ = "otp_code"

    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(8), default="live")  # live | used | dead
    # Development only (console provider): the plain code for the /dev/sms inbox.
    dev_code: Mapped[str] = mapped_column(String(8), default="")
