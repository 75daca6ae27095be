"""Draws (定时抽奖), their entries and their winners (docs/draws.md).

Correctness lives in the schema as much as in the code: a phone enters a draw once (UNIQUE
draw, phone), an entry's referral code is unique, a drawn pick is stored once per draw, tier
and rank (UNIQUE), and chances stay between 1 and the algorithm's bound (CHECK).

A draw's entrant count is kept in ``draw_tally``, raised in the transaction that writes the
entries, so the count an entry answers is a read of a few rows, never a count of every entry.
"""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.base import BigIntAuditBase, BigIntBase, orm_registry
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column


class Draw(BigIntAuditBase):
    """One lucky draw. Its slug and title live on the Tool (kind ``draw``) it belongs to.

    ``tiers``: ``[{"name", "quantity", "reserves", "voucher": {"prefix", "valid_days",
    "where"} | null}]`` in tier order, fixed at publication (they are part of the published
    rules). ``seed`` is secret until every tier is drawn; ``commitment`` is its SHA-256."""

    __tablename__ = "draw"
    __table_args__ = (
        CheckConstraint("claim_hours >= 1", name="claim_hours_positive"),
        CheckConstraint("referral_cap >= 0", name="referral_cap_nonnegative"),
    )

    tool_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tool.id", ondelete="CASCADE"), unique=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    image_url: Mapped[str] = mapped_column(String(512), default="")
    tiers: Mapped[list] = mapped_column(JSON, default=list)
    starts_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    ends_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # "schedule": open between starts_at and ends_at; "open"/"closed": the host's override.
    mode: Mapped[str] = mapped_column(String(16), default="schedule")
    # Eligibility: a completed tool (by slug) and a passphrase (口令), normalised; "" for none.
    requires_tool: Mapped[str] = mapped_column(String(64), default="")
    passphrase: Mapped[str] = mapped_column(String(64), default="")
    one_win_per_phone: Mapped[bool] = mapped_column(Boolean, default=True)
    claim_hours: Mapped[int] = mapped_column(Integer, default=48)
    referrals: Mapped[bool] = mapped_column(Boolean, default=False)
    referral_cap: Mapped[int] = mapped_column(Integer, default=5)
    use_drand: Mapped[bool] = mapped_column(Boolean, default=False)
    # Commit–reveal.
    seed: Mapped[bytes] = mapped_column(LargeBinary(32))
    commitment: Mapped[str] = mapped_column(String(64))
    # Set when the window closes: the frozen list's hash and count.
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    entrants_hash: Mapped[str] = mapped_column(String(64), default="")
    entrants_count: Mapped[int] = mapped_column(Integer, default=0)
    # drand: the round fixed at close (when the draw uses drand), the round once fetched.
    drand_round: Mapped[int | None] = mapped_column(BigInteger)
    drand: Mapped[dict | None] = mapped_column(JSON)
    # Tier numbers (from 1) already drawn, in the order drawn.
    drawn_tiers: Mapped[list] = mapped_column(JSON, default=list)
    # Bumped by every host action: its UPDATE comes first and serialises them (one writer).
    turn: Mapped[int] = mapped_column(Integer, default=0)


class DrawEntry(BigIntBase):
    """One phone's entry. ``chances`` is 1 plus the referral chances it earned; ``code`` is
    its share code; ``referred_by`` the entry whose code brought this one."""

    __tablename__ = "draw_entry"
    __table_args__ = (
        UniqueConstraint("draw_id", "phone_hash", name="uq_draw_entry_phone"),
        CheckConstraint("chances >= 1 AND chances <= 1000000", name="chances_in_range"),
        Index("ix_draw_entry_referred_by", "referred_by"),
    )

    draw_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("draw.id", ondelete="CASCADE"))
    phone_hash: Mapped[str] = mapped_column(String(64))
    phone_masked: Mapped[str] = mapped_column(String(32), default="")
    lead_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("lead.id", ondelete="SET NULL"), index=True
    )
    visitor_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("visitor.id", ondelete="SET NULL")
    )
    code: Mapped[str] = mapped_column(String(16), unique=True)
    referred_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("draw_entry.id", ondelete="SET NULL")
    )
    chances: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))


class DrawWinner(BigIntBase):
    """A pick of a drawn tier: a winner (``reserve`` false, ``rank`` in the order drawn) or a
    reserve (``reserve`` true, ``rank`` the order they are called up in). Status: ``won``
    (waiting for the claim), ``claimed``, ``redrawn`` (not claimed in time, replaced by the next
    reserve), ``reserve`` (not called up), and a called-up reserve is ``won``."""

    __tablename__ = "draw_winner"
    __table_args__ = (
        UniqueConstraint("draw_id", "tier", "reserve", "rank", name="uq_draw_winner_pick"),
        Index("ix_draw_winner_entry", "entry_id"),
    )

    draw_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("draw.id", ondelete="CASCADE"))
    tier: Mapped[int] = mapped_column(Integer)
    rank: Mapped[int] = mapped_column(Integer)
    reserve: Mapped[bool] = mapped_column(Boolean, default=False)
    entry_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("draw_entry.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16), default="won")
    won_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    claim_by: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    claim_fields: Mapped[dict] = mapped_column(JSON, default=dict)
    # The voucher, when the tier has a voucher template: a grab_claim row (docs/draws.md).
    voucher_code: Mapped[str] = mapped_column(String(32), default="")
    voucher_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # The winner this called-up reserve replaces.
    replaces: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("draw_winner.id", ondelete="SET NULL")
    )

    def lapsed(self, at: dt.datetime) -> bool:
        """A prize won and not claimed by its deadline (it may be redrawn; no longer claimed)."""
        return self.status == "won" and self.claim_by is not None and self.claim_by <= at

    def shown_status(self, at: dt.datetime) -> str:
        """won / claimed / expired / redrawn / reserve: a lapsed prize shows as expired."""
        return "expired" if self.lapsed(at) else self.status


# A draw's entrant count, in a few slots (draw, slot) that add up: each transaction that writes
# entries raises one slot, picked at random, by the entries it wrote. On PostgreSQL concurrent
# entries then seldom wait for one another's row lock; SQLite has one writer anyway. The count
# is SUM(entrants) over the draw's slots (app/draws/entries.py ``count``).
draw_tally = Table(
    "draw_tally",
    orm_registry.metadata,
    Column(
        "draw_id",
        BigInteger,
        ForeignKey("draw.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("slot", Integer, primary_key=True),
    Column("entrants", Integer, nullable=False),
)
