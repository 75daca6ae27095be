"""What each tracked link brought, for the links page: clicks and leads, for a whole page of
links in one query."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, literal, select, union, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.models import FunnelEvent
from app.leads.models import Lead
from app.links.schemas import LinkFigures


class LinkFiguresQuery:
    """app.links.service.LinkCounter: clicks are link_opened events (each opening counts:
    a visitor who comes back through the link twice clicked twice); leads are the leads whose
    first or last link it is, each lead counted once per link."""

    async def figures(self, db: AsyncSession, link_ids: Sequence[int]) -> dict[int, LinkFigures]:
        ids = list(link_ids)
        if not ids:
            return {}
        clicks = (
            select(
                FunnelEvent.link_id.label("link_id"),
                func.count().label("clicks"),
                literal(0).label("leads"),
            )
            .where(FunnelEvent.name == "link_opened", FunnelEvent.link_id.in_(ids))
            .group_by(FunnelEvent.link_id)
        )
        # UNION, not UNION ALL: a lead whose first and last link are the same counts once.
        touched = union(
            select(Lead.id.label("lead_id"), Lead.first_link_id.label("link_id")).where(
                Lead.first_link_id.in_(ids)
            ),
            select(Lead.id.label("lead_id"), Lead.last_link_id.label("link_id")).where(
                Lead.last_link_id.in_(ids)
            ),
        ).subquery()
        leads = select(
            touched.c.link_id.label("link_id"),
            literal(0).label("clicks"),
            func.count().label("leads"),
        ).group_by(touched.c.link_id)
        both = union_all(clicks, leads).subquery()
        rows = await db.execute(
            select(both.c.link_id, func.sum(both.c.clicks), func.sum(both.c.leads)).group_by(
                both.c.link_id
            )
        )
        return {
            int(link_id): LinkFigures(clicks=int(c or 0), leads=int(n or 0))
            for link_id, c, n in rows.all()
        }
