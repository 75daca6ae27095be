"""A won prize that is a voucher: a ``grab_claim`` row, so staff redeem it on /staff/vouchers
through the one redemption path (app/vouchers/service.py) with its audit, and the winner finds
it on 我的券 — no second voucher implementation (docs/draws.md, "Prizes that are vouchers").

The voucher tables hang off a grab: a draw whose tiers give vouchers gets one *carrier* grab
row on the draw's own tool (kind ``draw``, so no grab page, list or claim path ever sees it;
stock 0, closed). Each voucher is a claim of the carrier whose ``n`` is the tier number —
the (grab, phone, n) key then holds one voucher per phone and tier. The carrier's
``voucher_prefix`` is empty, so a code is shown by its 12-character body whatever the tier's
prefix; its offer names the voucher tiers and its ``voucher_where`` says where each is used.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.draws.definition import DrawInfo
from app.draws.entries import Entrant
from app.draws.models import Draw
from app.grabs import codes
from app.grabs.models import Grab, GrabClaim, issued_claim
from app.tools.models import Tool


def _texts(tiers: list[dict[str, Any]]) -> tuple[str, str]:
    with_voucher = [t for t in tiers if t.get("voucher")]
    offer = " / ".join(t["name"] for t in with_voucher)
    places = [(t["name"], t["voucher"].get("where", "")) for t in with_voucher]
    distinct = {where for _, where in places if where}
    if len(distinct) <= 1:
        return offer[:2000], next(iter(distinct), "")
    return offer[:2000], "\n".join(f"{name}：{where}" for name, where in places if where)[:2000]


async def carrier(db: AsyncSession, draw: Draw, tool: Tool) -> int:
    """The draw's carrier grab (made once, under the host's turn on the draw)."""
    found = await db.scalar(select(Grab.id).where(Grab.tool_id == tool.id))
    if found is not None:
        return int(found)
    offer, where = _texts(draw.tiers)
    grab = Grab(
        tool_id=tool.id,
        offer=offer,
        image_url="",
        initial_stock=0,
        stock=0,
        per_phone_limit=1,
        mode="closed",
        voucher_prefix="",
        voucher_valid_days=1,
        voucher_where=where,
    )
    db.add(grab)
    await db.flush()
    return grab.id


async def issue(
    db: AsyncSession,
    draw: DrawInfo,
    tier: int,
    template: dict[str, Any],
    who: Entrant,
    at: dt.datetime,
) -> tuple[str, dt.datetime]:
    """The winner's voucher for ``tier``: code and expiry."""
    grab_id = await db.scalar(select(Grab.id).where(Grab.tool_id == draw.tool_id))
    assert grab_id is not None, "the carrier is made when a voucher tier is drawn"
    code = codes.new_code(str(template.get("prefix") or "LK"))
    expires = at + dt.timedelta(days=int(template.get("valid_days") or 30))
    db.add(GrabClaim(**issued_claim(grab_id, tier, who, at, code, expires), redeemed_store=""))
    return code, expires
