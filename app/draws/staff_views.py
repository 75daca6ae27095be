"""What the staff's draw pages show, read for them: the list (state, entrants), one draw's
entrants (who referred whom) and winners per tier, the same as CSV rows, and the host
console's actions. Phones are masked unless the page was asked to reveal them (an audited
request by a role that may see numbers, app/draws/staff_routes.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.core.clock import china_time, now
from app.core.crypto import DataCipher
from app.core.i18n import N_
from app.core.phone import display
from app.draws.definition import DrawInfo, info_of, state_of
from app.draws.models import Draw, DrawEntry, DrawWinner
from app.draws.schemas import STATE_LABELS, DrawStatus
from app.leads.models import Lead
from app.tools.models import Tool

SHOWN_ENTRANTS = 500  # the page lists the newest; the CSV holds every entrant

STATUS_LABELS: dict[str, str] = {
    "won": N_("Won, waiting for the claim"),
    "claimed": N_("Claimed"),
    "expired": N_("Not claimed in time"),
    "redrawn": N_("Not claimed: replaced by a reserve"),
    "reserve": N_("Reserve"),
}


async def listing(db: AsyncSession) -> list[dict[str, Any]]:
    """Every draw, newest first, with its state and entrant count."""
    counts = (
        select(DrawEntry.draw_id, func.count().label("n")).group_by(DrawEntry.draw_id).subquery()
    )
    rows = await db.execute(
        select(Tool, Draw, counts.c.n)
        .join(Draw, Draw.tool_id == Tool.id)
        .outerjoin(counts, counts.c.draw_id == Draw.id)
        .where(Tool.kind == "draw")
        .order_by(Draw.id.desc())
    )
    at = now()
    listed = []
    for tool, draw, n in rows:
        info = info_of(tool, draw)
        listed.append(
            {
                "draw": info,
                "state": state_of(info, at),
                "entrants": info.entrants_count if info.closed_at else int(n or 0),
                "starts": china_time(info.starts_at),
                "ends": china_time(info.ends_at),
            }
        )
    return listed


class Phones:
    """Masked phones, or (revealed) every entrant's number from their lead."""

    def __init__(self, cipher: DataCipher | None, leads: dict[int, str]) -> None:
        self.cipher, self.leads = cipher, leads

    @classmethod
    async def load(cls, db: AsyncSession, draw_id: int, cipher: DataCipher | None) -> Phones:
        if cipher is None:
            return cls(None, {})
        rows = await db.execute(
            select(Lead.id, Lead.phone_cipher)
            .join(DrawEntry, DrawEntry.lead_id == Lead.id)
            .where(DrawEntry.draw_id == draw_id, Lead.status != "withdrawn")
        )
        return cls(cipher, {lead_id: text for lead_id, text in rows})

    def of(self, masked: str, lead_id: int | None) -> str:
        if self.cipher is None or lead_id is None or lead_id not in self.leads:
            return masked
        return display(self.cipher.decrypt(self.leads[lead_id]))


async def entrants(
    db: AsyncSession, info: DrawInfo, phones: Phones, limit: int | None = SHOWN_ENTRANTS
) -> list[dict[str, Any]]:
    """The entrants, newest first: phone, chances, share code, who referred them."""
    referrer = aliased(DrawEntry)
    query = (
        select(DrawEntry, referrer.id, referrer.phone_masked, referrer.lead_id)
        .outerjoin(referrer, referrer.id == DrawEntry.referred_by)
        .where(DrawEntry.draw_id == info.id)
        .order_by(DrawEntry.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    listed = []
    for entry, ref_id, ref_masked, ref_lead in await db.execute(query):
        listed.append(
            {
                "id": entry.id,
                "phone": phones.of(entry.phone_masked, entry.lead_id),
                "lead_id": entry.lead_id,
                "chances": entry.chances,
                "code": entry.code,
                "referred_by": ref_id,
                "referrer_phone": phones.of(ref_masked, ref_lead) if ref_id else "",
                "entered": china_time(entry.created_at),
            }
        )
    return listed


async def winners(db: AsyncSession, info: DrawInfo, phones: Phones) -> list[dict[str, Any]]:
    """Each tier with its picks in order: winners, then reserves."""
    rows = await db.execute(
        select(DrawWinner, DrawEntry.phone_masked, DrawEntry.lead_id)
        .join(DrawEntry, DrawEntry.id == DrawWinner.entry_id)
        .where(DrawWinner.draw_id == info.id)
        .order_by(DrawWinner.tier, DrawWinner.reserve, DrawWinner.rank)
    )
    at = now()
    tiers: list[dict[str, Any]] = [
        {
            "n": n,
            "name": t.name,
            "quantity": t.quantity,
            "drawn": n in info.drawn_tiers,
            "picks": [],
        }
        for n, t in enumerate(info.tiers, start=1)
    ]
    for pick, masked, lead_id in rows:
        status = pick.shown_status(at)
        tiers[pick.tier - 1]["picks"].append(
            {
                "tier": pick.tier,
                "rank": pick.rank,
                "reserve": pick.reserve,
                "entry_id": pick.entry_id,
                "phone": phones.of(masked, lead_id),
                "status": status,
                "claim_by": china_time(pick.claim_by),
                "claimed_at": china_time(pick.claimed_at),
                "voucher_code": pick.voucher_code,
            }
        )
    return tiers


# The host console.


@dataclass(frozen=True, slots=True)
class TierAction:
    """A drawn or undrawn tier as the console shows it."""

    n: int
    name: str
    quantity: int
    drawn: bool
    winners: list[str]
    next: bool  # the tier the host draws next
    redraw_at: str  # when a redraw becomes possible (China time); "" when it is now or never
    can_redraw: bool


async def console(db: AsyncSession, info: DrawInfo, status: DrawStatus) -> dict[str, Any]:
    """The console's state: what the window allows, and each tier's draw or redraw."""
    at = now()
    picks = (
        (
            await db.execute(
                select(DrawWinner).where(
                    DrawWinner.draw_id == info.id, DrawWinner.status.in_(("won", "reserve"))
                )
            )
        )
        .scalars()
        .all()
    )
    undrawn = [n for n in range(1, len(info.tiers) + 1) if n not in info.drawn_tiers]
    frozen = info.closed_at is not None
    tiers = []
    for n, (tier, shown) in enumerate(zip(info.tiers, status.tiers, strict=True), start=1):
        waiting = [p for p in picks if p.tier == n and p.status == "won" and p.claim_by]
        lapsed = [p for p in waiting if p.lapsed(at)]
        first = min((p.claim_by for p in waiting if p.claim_by is not None), default=None)
        tiers.append(
            TierAction(
                n=n,
                name=tier.name,
                quantity=tier.quantity,
                drawn=shown.drawn,
                winners=shown.winners,
                next=bool(undrawn) and n == undrawn[0] and status.state in ("closed", "drawing"),
                redraw_at=china_time(first) if shown.drawn and not lapsed and first else "",
                can_redraw=shown.drawn and bool(lapsed),
            )
        )
    return {
        "state": status.state,
        "state_label": STATE_LABELS[status.state],
        "can_open": not frozen and status.state != "open",
        "can_close": not frozen and status.state in ("open", "closed"),
        "can_schedule": not frozen and info.mode != "schedule" and info.starts_at is not None,
        "frozen": frozen,
        "tiers": tiers,
    }
