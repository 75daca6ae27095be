"""Accounts (品牌号/员工号/合作号/投流) and the tracked links (渠道码) bound to them."""

from __future__ import annotations

from advanced_alchemy.base import BigIntAuditBase
from sqlalchemy import BigInteger, Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship


class Account(BigIntAuditBase):
    __tablename__ = "account"
    __table_args__ = (UniqueConstraint("kind", "name"),)

    kind: Mapped[str] = mapped_column(String(16))  # brand | employee | partner | ads
    name: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16), default="douyin")  # douyin|wechat|other
    owner_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff_user.id", ondelete="SET NULL"), index=True
    )


class TrackedLink(BigIntAuditBase):
    __tablename__ = "tracked_link"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("account.id", ondelete="RESTRICT"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))  # live|video|profile|search|qr|share
    campaign: Mapped[str] = mapped_column(String(64), default="")
    target_slug: Mapped[str] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    account: Mapped[Account] = relationship(lazy="joined")
