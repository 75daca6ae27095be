"""Steps the browser reports about a tool (step started, shared, …): checked, limited and
handed to the tracker. POST /api/v1/events (app/site/routes.py) is their door."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import InvalidInput, RateLimited
from app.core.i18n import N_
from app.core.ratelimit import RateLimiter
from app.events.schemas import EventBatch
from app.events.service import Tracker, visitor_context
from app.settings import Settings
from app.tools.models import Tool
from app.visitors import service as visitors


async def report(
    db: AsyncSession,
    tracker: Tracker,
    limiter: RateLimiter,
    settings: Settings,
    *,
    public_id: str | None,
    ip: str,
    batch: EventBatch,
) -> int:
    """Track a batch of client events for the visitor ``public_id``; all or nothing.
    Returns how many were accepted."""
    if len(batch.events) > settings.events_batch_max:
        raise InvalidInput(N_("Too many events in one batch."), fields={"events": "too_many"})
    if public_id is None:
        raise InvalidInput(N_("Open a tool page first."), fields={"visitor": "unknown"})
    # Limits count events, not requests (a batch holds up to events_batch_max), per IP and per
    # visitor, shared by every worker process (the side store, or Redis).
    verdicts = await limiter.hit_all(
        [
            (f"events:ip:{ip}", settings.events_ip_per_minute, 60),
            (f"events:v:{public_id}", settings.events_visitor_per_minute, 60),
        ],
        cost=len(batch.events),
    )
    refused = [v for v in verdicts if not v.allowed]
    if refused:
        raise RateLimited(retry_after=max(v.retry_after for v in refused))
    visitor = await visitors.find(db, public_id)
    if visitor is None:
        raise InvalidInput(N_("Open a tool page first."), fields={"visitor": "unknown"})
    versions = await _versions(db, {e.tool for e in batch.events if e.tool})
    unknown = sorted(slug for slug, found in versions.items() if found is None)
    if unknown:
        raise InvalidInput(N_("Unknown tool."), fields={"tool": ", ".join(unknown)[:200]})
    for item in batch.events:
        tool_id, version = versions.get(item.tool) or (None, None)
        tracker.track(visitor_context(visitor, tool_id, version), item.event)
    return len(batch.events)


async def _versions(db: AsyncSession, slugs: set[str]) -> dict[str, tuple[int, int | None] | None]:
    """Each slug's tool id and current version (None for a slug that names no tool)."""
    if not slugs:
        return {}
    rows = await db.execute(
        select(Tool.slug, Tool.id, Tool.current_version).where(Tool.slug.in_(slugs))
    )
    found = {slug: (tool_id, version) for slug, tool_id, version in rows}
    return {slug: found.get(slug) for slug in slugs}
