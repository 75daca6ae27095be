"""The waiting list of a sold-out grab: a visitor who missed it leaves their phone (through the
gate) and asks to be told when the next round opens. Sales find them on the lead's timeline
(``grab_waitlisted``), written in the request's transaction (Tracker.record); nothing else
holds the list, so it needs no table of its own.

Once per phone and grab, however often the visitor taps: ``join`` first updates the lead's
row, which takes its lock (PostgreSQL: the row; SQLite: the database's write lock, before any
read of this transaction), so a second tap waits for the first to commit and then finds its
entry.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import now
from app.events.models import FunnelEvent
from app.events.schemas import EventContext, GrabWaitlisted
from app.events.service import Tracker
from app.gate.service import GateRequired
from app.leads.models import Lead

EVENT = "grab_waitlisted"


async def on_list(db: AsyncSession, lead_id: int, tool_id: int) -> bool:
    """Whether the lead is on the grab tool's waiting list."""
    found = await db.scalar(
        select(FunnelEvent.id)
        .where(
            FunnelEvent.name == EVENT,
            FunnelEvent.lead_id == lead_id,
            FunnelEvent.tool_id == tool_id,
        )
        .limit(1)
    )
    return found is not None


async def join(db: AsyncSession, tracker: Tracker, ctx: EventContext) -> bool:
    """Put the lead of ``ctx`` on the waiting list of its grab tool; False when it was on it
    already. Must be the first statement of the transaction (see the module's docstring).
    GateRequired when the lead is gone (its data deleted since the visitor was looked up)."""
    if ctx.lead_id is None or ctx.tool_id is None:
        raise GateRequired()
    at = now()
    locked = await db.scalar(
        update(Lead)
        .where(Lead.id == ctx.lead_id)
        .values(last_seen_at=at)
        .returning(Lead.id)
        .execution_options(synchronize_session=False)
    )
    if locked is None:
        raise GateRequired()
    if await on_list(db, ctx.lead_id, ctx.tool_id):
        return False
    tracker.record(db, ctx, GrabWaitlisted(), at)
    await db.flush()
    return True
