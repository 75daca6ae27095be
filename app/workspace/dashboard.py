"""The dashboard's figures: what happened today and this week, read in one pass each."""

from __future__ import annotations

import datetime as dt

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.models import FunnelEvent
from app.leads.models import Lead
from app.tools.models import Tool

CHINA = dt.timezone(dt.timedelta(hours=8))


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    leads_today: int
    leads_week: int
    visitors_today: int
    verified_today: int
    tools_published: int


async def summary(db: AsyncSession, now: dt.datetime | None = None) -> Summary:
    """Counts since midnight and for the last 7 days, midnight in China time."""
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(CHINA).replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - dt.timedelta(days=6)
    leads_today, leads_week = (
        await db.execute(
            select(
                func.count().filter(Lead.created_at >= today),
                func.count().filter(Lead.created_at >= week),
            )
        )
    ).one()
    visitors_today, verified_today = (
        await db.execute(
            select(
                func.count(func.distinct(FunnelEvent.visitor_id)).filter(
                    FunnelEvent.name == "tool_viewed"
                ),
                func.count().filter(FunnelEvent.name == "phone_verified"),
            ).where(FunnelEvent.at >= today)
        )
    ).one()
    tools = await db.scalar(select(func.count()).where(Tool.status == "published"))
    return Summary(
        leads_today=int(leads_today),
        leads_week=int(leads_week),
        visitors_today=int(visitors_today),
        verified_today=int(verified_today),
        tools_published=int(tools or 0),
    )
