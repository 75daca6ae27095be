"""POST /api/v1/events: steps the browser reports (step started, shared, …)."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.api import problems
from app.core.errors import InvalidInput, RateLimited
from app.core.i18n import N_
from app.core.ratelimit import RateLimiter
from app.events.schemas import EventBatch, EventsAccepted
from app.events.service import Tracker
from app.settings import Settings
from app.tools.models import Tool
from app.visitors import service as visitors
from app.visitors.web import context, public_id_from


@post(
    "/api/v1/events",
    status_code=202,
    summary="Report funnel steps",
    tags=["events"],
    responses=problems(
        413,
        415,
        429,
        why={400: "No visitor cookie (open a tool page first), an unknown tool or event."},
    ),
)
async def ingest(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    tracker: NamedDependency[Tracker],
    limiter: NamedDependency[RateLimiter],
    ip: NamedDependency[str],
    data: JSONBody[EventBatch],
) -> EventsAccepted:
    """Accept a batch of client events for the visitor in the cookie; all or nothing."""
    if len(data.events) > settings.events_batch_max:
        raise InvalidInput(N_("Too many events in one batch."), fields={"events": "too_many"})
    # Limits count events, not requests (a batch holds up to events_batch_max), per IP and per
    # visitor, shared by every worker process (the side store, or Redis).
    public_id = public_id_from(settings, request.scope)
    if public_id is None:
        raise InvalidInput(N_("Open a tool page first."), fields={"visitor": "unknown"})
    cost = len(data.events)
    verdicts = await limiter.hit_all(
        [
            (f"events:ip:{ip}", settings.events_ip_per_minute, 60),
            (f"events:v:{public_id}", settings.events_visitor_per_minute, 60),
        ],
        cost=cost,
    )
    refused = [v for v in verdicts if not v.allowed]
    if refused:
        raise RateLimited(retry_after=max(v.retry_after for v in refused))
    visitor = await visitors.find(db_session, public_id)
    if visitor is None:
        raise InvalidInput(N_("Open a tool page first."), fields={"visitor": "unknown"})
    tool_ids = await _tool_ids(db_session, {e.tool for e in data.events if e.tool})
    unknown = sorted(slug for slug, tool_id in tool_ids.items() if tool_id is None)
    if unknown:
        raise InvalidInput(N_("Unknown tool."), fields={"tool": ", ".join(unknown)[:200]})
    for item in data.events:
        tool_id, version = tool_ids.get(item.tool, (None, None)) if item.tool else (None, None)
        tracker.track(context(visitor, tool_id, version), item.event)
    return EventsAccepted(accepted=len(data.events))


async def _tool_ids(db: AsyncSession, slugs: set[str]) -> dict[str, Any]:
    if not slugs:
        return {}
    from sqlalchemy import select

    rows = await db.execute(
        select(Tool.slug, Tool.id, Tool.current_version).where(Tool.slug.in_(slugs))
    )
    found = {slug: (tool_id, version) for slug, tool_id, version in rows}
    return {slug: found.get(slug) for slug in slugs}


ROUTES: list[ControllerRouterHandler] = [ingest]
