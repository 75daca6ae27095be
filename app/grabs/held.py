"""The vouchers a visitor holds, as the visitor sees them (the grab page after winning, the
我的券 page): the state each is in, and the QR code only while the voucher can be used.

Staff see the same vouchers through app/vouchers; the state is computed the same way for both
(``state``): a stored ``issued`` voucher past its expiry is ``expired``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from litestar.datastructures import Cookie
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import aware, now
from app.core.i18n import N_
from app.core.qr import qr_data_uri
from app.grabs.codes import display
from app.grabs.models import GrabClaim
from app.settings import Settings

STATES = ("issued", "redeemed", "expired", "void")
# What the visitor reads on the voucher's stamp.
STATE_LABELS: dict[str, str] = {
    "issued": N_("Ready to use"),
    "redeemed": N_("Redeemed"),
    "expired": N_("Expired"),
    "void": N_("Void"),
}

# A hint, not a credential: "this browser has been shown vouchers", so visitor pages link to
# 我的券 without a query on every page. A forged or stale hint shows a link to an empty list.
HINT_COOKIE = "lk_mv"


def state(status: str, expires_at: dt.datetime, at: dt.datetime) -> str:
    """The voucher's state at ``at``: issued, redeemed, expired or void."""
    if status == "issued" and aware(expires_at) <= at:
        return "expired"
    return status if status in STATES else "void"


class HeldVoucher(msgspec.Struct, kw_only=True, frozen=True):
    """One voucher as its holder sees it. ``qr`` is empty unless the voucher can be used."""

    code: str
    display: str
    n: int
    state: str
    expires_at: dt.datetime
    where: str = ""
    claimed_at: dt.datetime | None = None
    redeemed_at: dt.datetime | None = None
    redeemed_store: str = ""
    title: str = ""
    slug: str = ""
    qr: str = ""

    @property
    def usable(self) -> bool:
        return self.state == "issued"

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]


def held(
    *,
    code: str,
    display: str,
    n: int,
    status: str,
    expires_at: dt.datetime,
    at: dt.datetime,
    where: str = "",
    claimed_at: dt.datetime | None = None,
    redeemed_at: dt.datetime | None = None,
    redeemed_store: str = "",
    title: str = "",
    slug: str = "",
) -> HeldVoucher:
    """A stored voucher as its holder sees it at ``at``."""
    now_state = state(status, expires_at, at)
    return HeldVoucher(
        code=code,
        display=display,
        n=n,
        state=now_state,
        expires_at=aware(expires_at),
        where=where,
        claimed_at=aware(claimed_at) if claimed_at else None,
        redeemed_at=aware(redeemed_at) if redeemed_at else None,
        redeemed_store=redeemed_store or "",
        title=title,
        slug=slug,
        qr=qr_data_uri(code) if now_state == "issued" else "",
    )


# The columns of a won unit that ``held_row`` reads.
HELD_COLUMNS = (
    GrabClaim.code,
    GrabClaim.n,
    GrabClaim.status,
    GrabClaim.expires_at,
    GrabClaim.claimed_at,
    GrabClaim.redeemed_at,
    GrabClaim.redeemed_store,
)


def held_row(
    row: Any, at: dt.datetime, *, display: str, where: str, title: str = "", slug: str = ""
) -> HeldVoucher:
    """A row selected with ``HELD_COLUMNS``, as its holder sees it at ``at``."""
    stored = {column.key: getattr(row, column.key) for column in HELD_COLUMNS}
    return held(**stored, display=display, at=at, where=where, title=title, slug=slug)


async def held_in(db: AsyncSession, grab_id: int, where: str, phone_hash: str) -> list[HeldVoucher]:
    """What the phone behind ``phone_hash`` won in one grab, in the order won."""
    rows = await db.execute(
        select(*HELD_COLUMNS)
        .where(GrabClaim.grab_id == grab_id, GrabClaim.phone_hash == phone_hash)
        .order_by(GrabClaim.n)
    )
    at = now()
    return [held_row(row, at, display=display(row.code), where=where) for row in rows]


def hint_cookie(settings: Settings, has_vouchers: bool) -> Cookie:
    """Set (or, with ``has_vouchers`` false, clear) the 我的券 hint."""
    return Cookie(
        key=HINT_COOKIE,
        value="1" if has_vouchers else "",
        path="/",
        max_age=settings.visitor_cookie_days * 86_400 if has_vouchers else 0,
        httponly=True,
        secure=settings.is_prod,
        samesite="lax",
    )
