"""The dashboard's figures: what happened today and this week, in one query, kept a few
seconds per process (``FIGURES_TTL``): staff open the dashboard all day long, and the figures
move by the minute."""

from __future__ import annotations

import datetime as dt
import time
import weakref
from typing import Any

import msgspec
from sqlalchemy import BindParameter, Select, bindparam, func, select, true
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.events.models import FunnelEvent
from app.leads.models import Lead
from app.tools.models import Tool

CHINA = dt.timezone(dt.timedelta(hours=8))
FIGURES_TTL = 5.0  # seconds
_kept: weakref.WeakKeyDictionary[AsyncEngine, tuple[float, dt.datetime, Summary]] = (
    weakref.WeakKeyDictionary()
)


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    leads_today: int
    leads_week: int
    visitors_today: int
    verified_today: int
    tools_published: int


def _figures() -> Select[Any]:
    today: BindParameter[dt.datetime] = bindparam("today")
    week: BindParameter[dt.datetime] = bindparam("week")
    leads = select(
        func.count().filter(Lead.created_at >= today),
        func.count().filter(Lead.created_at >= week),
    ).subquery()
    events = (
        select(
            func.count(func.distinct(FunnelEvent.visitor_id))
            .filter(FunnelEvent.name == "tool_viewed")
            .label("visitors"),
            func.count().filter(FunnelEvent.name == "phone_verified").label("verified"),
        )
        .where(FunnelEvent.at >= today)
        .subquery()
    )
    tools = select(func.count()).where(Tool.status == "published").scalar_subquery()
    # Each subquery is one row: joined on nothing, they make the one row of figures.
    return select(*leads.c, *events.c, tools).select_from(leads.join(events, true()))


# Built once: building the statement cost more than running it (SQLAlchemy's function and
# subquery objects are slow to make), and one statement is one round trip.
_FIGURES = _figures()


async def figures(db: AsyncSession) -> Summary:
    """``summary`` as the dashboard shows it: read again after ``FIGURES_TTL`` seconds (and
    at midnight)."""
    bind = db.bind
    today = _midnight(dt.datetime.now(dt.UTC))
    kept = _kept.get(bind) if isinstance(bind, AsyncEngine) else None
    if kept is not None and kept[1] == today and time.monotonic() < kept[0]:
        return kept[2]
    found = await summary(db)
    if isinstance(bind, AsyncEngine):
        _kept[bind] = (time.monotonic() + FIGURES_TTL, today, found)
    return found


def _midnight(now: dt.datetime) -> dt.datetime:
    return now.astimezone(CHINA).replace(hour=0, minute=0, second=0, microsecond=0)


async def summary(db: AsyncSession, now: dt.datetime | None = None) -> Summary:
    """Counts since midnight and for the last 7 days, midnight in China time."""
    now = now or dt.datetime.now(dt.UTC)
    today = _midnight(now)
    week = today - dt.timedelta(days=6)
    row = (await db.execute(_FIGURES, {"today": today, "week": week})).one()
    return Summary(
        leads_today=int(row[0]),
        leads_week=int(row[1]),
        visitors_today=int(row[2]),
        verified_today=int(row[3]),
        tools_published=int(row[4] or 0),
    )
