"""Leads (one per normalised phone number) and the consents they gave."""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.base import BigIntAuditBase, BigIntBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column


class Lead(BigIntAuditBase):
    __tablename__ = "lead"

    # AES-GCM ciphertext of the E.164 number; phone_hash is an HMAC for lookup.
    phone_cipher: Mapped[str] = mapped_column(String(255))
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)
    phone_masked: Mapped[str] = mapped_column(String(24))
    first_link_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tracked_link.id", ondelete="SET NULL"), index=True
    )
    first_src: Mapped[str] = mapped_column(String(64), default="")
    # Indexed like first_link_id: the links page counts each link's leads by both.
    last_link_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tracked_link.id", ondelete="SET NULL"), index=True
    )
    last_src: Mapped[str] = mapped_column(String(64), default="")
    first_platform: Mapped[str] = mapped_column(String(16), default="browser")
    auth_method: Mapped[str] = mapped_column(String(16), default="sms")
    status: Mapped[str] = mapped_column(String(16), default="new")
    owner_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff_user.id", ondelete="SET NULL"), index=True
    )
    needs: Mapped[dict] = mapped_column(JSON, default=dict)
    notes: Mapped[str] = mapped_column(Text, default="")
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class Consent(BigIntBase):
    """An explicit consent (PIPL): what notice, when, from where. Withdrawal is recorded, never
    erased, and does not act retroactively."""

    __tablename__ = "consent"

    lead_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("lead.id", ondelete="CASCADE"), index=True
    )
    visitor_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("visitor.id", ondelete="SET NULL")
    )
    purpose: Mapped[str] = mapped_column(String(32), default="lead_follow_up")
    notice_version: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
