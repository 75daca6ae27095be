"""Telling a winner: the one call site for the winner's SMS (issue 13, item 5).

THE OUTBOX IS NOT WIRED YET: app/outbox has its table (migration 0008) but no enqueue API
when this was written. ``winner`` is called for each winner in the draw's own transaction;
once the outbox offers ``enqueue(db, kind, key, payload)``, this function writes the SMS
there (key ``draw:{draw id}:winner:{entry id}``, so a redraw or retry never sends twice).
Until then the winner learns it on the draw page and the lead's timeline (``draw_won``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from app.draws.definition import DrawInfo


def winner(
    db: AsyncSession,
    draw: DrawInfo,
    tier: int,
    entry_id: int,
    lead_id: int | None,
    claim_by: dt.datetime,
) -> None:
    """Queue the SMS telling the entry's phone it won ``tier`` (see the module's note)."""
    del db, draw, tier, entry_id, lead_id, claim_by  # TODO(outbox): enqueue the winner's SMS
