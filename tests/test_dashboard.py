"""The staff dashboard's figures: today (since midnight in China) and the last seven days."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from app.demo.service import seed_tools
from app.events.models import FunnelEvent
from app.leads.models import Lead
from app.tools.models import Tool
from app.workspace.dashboard import Summary, summary
from tests.helpers import Browserish

UTC = dt.UTC
# 11:00 in China on 2 December: China's midnight is 16:00 UTC the day before.
NOW = dt.datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
MIDNIGHT = dt.datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
SECOND = dt.timedelta(seconds=1)
WEEK = MIDNIGHT - dt.timedelta(days=6)


def test_the_figures_count_from_midnight_in_china(client: Browserish) -> None:
    client.run(seed_tools)

    async def fill(db: Any) -> None:
        for n, at in enumerate([NOW, MIDNIGHT, MIDNIGHT - SECOND, WEEK, WEEK - SECOND]):
            db.add(
                Lead(
                    phone_cipher="x",
                    phone_hash=f"h{n}",
                    phone_masked="138****0000",
                    needs={},
                    created_at=at,
                )
            )
        for name, visitor, at in [
            ("tool_viewed", 1, NOW),
            ("tool_viewed", 1, MIDNIGHT),  # the same visitor again: one visitor
            ("tool_viewed", 2, NOW),
            ("tool_viewed", 3, MIDNIGHT - SECOND),  # yesterday
            ("phone_verified", 1, NOW),
            ("phone_verified", 2, MIDNIGHT),
            ("phone_verified", 3, MIDNIGHT - SECOND),
            ("code_sent", 4, NOW),
        ]:
            db.add(FunnelEvent(at=at, name=name, visitor_id=visitor, props={}))

    client.run(fill)

    async def figures(db: Any) -> tuple[Summary, int]:
        published = await db.scalar(select(func.count()).where(Tool.status == "published"))
        return await summary(db, NOW), int(published)

    found, published = client.run(figures)
    assert published > 0
    assert found == Summary(
        leads_today=2,
        leads_week=4,
        visitors_today=2,
        verified_today=2,
        tools_published=published,
    )


def test_an_empty_database_counts_nothing(client: Browserish) -> None:
    assert client.run(summary) == Summary(
        leads_today=0, leads_week=0, visitors_today=0, verified_today=0, tools_published=0
    )
