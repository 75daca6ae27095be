"""Grabs, claims (each winning claim is a voucher) and the voucher audit trail.

Correctness lives in the schema as much as in the code: ``stock`` can never go negative
(CHECK), a phone can hold claim number ``n`` of a grab only once (UNIQUE), and a voucher code is
unique across the installation.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from advanced_alchemy.base import BigIntAuditBase, BigIntBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.tools.models import ScheduledTool


class Grab(ScheduledTool, BigIntAuditBase):
    """One limited offer. Its slug and title live on the Tool (kind ``grab``) it belongs to."""

    __tablename__ = "grab"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_nonnegative"),
        CheckConstraint("initial_stock >= 0", name="initial_stock_nonnegative"),
        CheckConstraint("per_phone_limit >= 1", name="per_phone_limit_positive"),
    )

    offer: Mapped[str] = mapped_column(Text, default="")
    initial_stock: Mapped[int] = mapped_column(Integer)
    # Units left. The SQL path decrements it per claim; with Redis, the Redis counter is the
    # live figure and the claim writer brings this column level with it.
    stock: Mapped[int] = mapped_column(Integer)
    per_phone_limit: Mapped[int] = mapped_column(Integer, default=1)
    # Voucher template.
    voucher_prefix: Mapped[str] = mapped_column(String(8), default="LK")
    voucher_valid_days: Mapped[int] = mapped_column(Integer, default=30)
    voucher_where: Mapped[str] = mapped_column(Text, default="")


class GrabClaim(BigIntBase):
    """A won unit: the claim row is written before the stock is decremented, under a unique
    (grab, phone, n) key, and it carries the voucher the visitor was given."""

    __tablename__ = "grab_claim"
    __table_args__ = (
        UniqueConstraint("grab_id", "phone_hash", "n", name="uq_grab_claim_phone_n"),
        CheckConstraint("n >= 1", name="n_positive"),
        Index("ix_grab_claim_grab_claimed", "grab_id", "claimed_at"),
        Index("ix_grab_claim_idempotency", "grab_id", "idempotency_key"),
    )

    grab_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("grab.id", ondelete="CASCADE"))
    phone_hash: Mapped[str] = mapped_column(String(64))
    n: Mapped[int] = mapped_column(Integer, default=1)
    lead_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("lead.id", ondelete="SET NULL"), index=True
    )
    visitor_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("visitor.id", ondelete="SET NULL"), index=True
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    # The voucher.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="issued")  # issued | redeemed
    redeemed_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    redeemed_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    redeemed_store: Mapped[str] = mapped_column(String(64), default="")


def issued_claim(
    grab_id: int, n: int, who: Any, at: dt.datetime, code: str, expires: dt.datetime
) -> dict[str, Any]:
    """The columns of a voucher issued now: claim ``n`` of grab ``grab_id`` by ``who`` (a grab's
    claimant, a draw's winner: its ``phone_hash``, ``lead_id`` and ``visitor_id``)."""
    return {
        "grab_id": grab_id,
        "phone_hash": who.phone_hash,
        "n": n,
        "lead_id": who.lead_id,
        "visitor_id": who.visitor_id,
        "claimed_at": at,
        "code": code,
        "expires_at": expires,
        "status": "issued",
    }


class VoucherAudit(BigIntBase):
    """Every redemption attempt, success or refusal, and every undo: who, when, which store."""

    __tablename__ = "voucher_audit"

    claim_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("grab_claim.id", ondelete="SET NULL"), index=True
    )
    code: Mapped[str] = mapped_column(String(32), default="")
    action: Mapped[str] = mapped_column(String(16))  # redeem | undo | refused
    reason: Mapped[str] = mapped_column(String(32), default="")
    staff_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("staff_user.id", ondelete="SET NULL"), index=True
    )
    store: Mapped[str] = mapped_column(String(64), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
