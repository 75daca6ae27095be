"""我的券: the vouchers a visitor holds, newest first, found through the visitor cookie.

A visitor who authorised a phone holds that phone's vouchers (its lead's), whichever browser
won them; a visitor without a phone holds what its own browser won (nothing, in practice: a
grab needs a phone). No phone number is shown, masked or not: the page is the holder's own.
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import now
from app.grabs import codes
from app.grabs.held import HELD_COLUMNS, HeldVoucher, held_row
from app.grabs.models import Grab, GrabClaim
from app.tools.models import Tool
from app.visitors.models import Visitor

LIMIT = 100


async def held_by(db: AsyncSession, public_id: str | None) -> list[HeldVoucher]:
    """The vouchers of the visitor behind ``public_id`` (its cookie), newest first; one query."""
    if not public_id:
        return []
    owner = or_(
        and_(Visitor.lead_id.is_not(None), GrabClaim.lead_id == Visitor.lead_id),
        and_(Visitor.lead_id.is_(None), GrabClaim.visitor_id == Visitor.id),
    )
    rows = await db.execute(
        select(*HELD_COLUMNS, Grab.voucher_prefix, Grab.voucher_where, Tool.title, Tool.slug)
        .select_from(Visitor)
        .join(GrabClaim, owner)
        .join(Grab, Grab.id == GrabClaim.grab_id)
        .join(Tool, Tool.id == Grab.tool_id)
        .where(Visitor.public_id == public_id)
        .order_by(GrabClaim.claimed_at.desc(), GrabClaim.id.desc())
        .limit(LIMIT)
    )
    at = now()
    return [
        held_row(
            row,
            at,
            display=codes.display(row.code, len(row.voucher_prefix or "") or None),
            where=row.voucher_where or "",
            title=row.title,
            slug=row.slug,
        )
        for row in rows
    ]
