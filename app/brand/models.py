"""The brand: one row, changed by an admin at /staff/admin/brand."""

from __future__ import annotations

from advanced_alchemy.base import BigIntAuditBase
from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

BRAND_ROW = 1


class BrandRow(BigIntAuditBase):
    """Row BRAND_ROW only. ``version`` goes up with every change: worker processes compare it
    with the one they hold (app/brand/book.py), and it busts browser caches of /brand.css and
    the logo."""

    __tablename__ = "brand"

    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[str] = mapped_column(String(7))  # #rrggbb, lower case
    contact_phone: Mapped[str] = mapped_column(String(20), default="")  # E.164 or ""
    logo: Mapped[bytes] = mapped_column(LargeBinary, default=b"")  # PNG we encoded, or empty
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
