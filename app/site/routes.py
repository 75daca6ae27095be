"""The public site: the front page, tracked links ``/s/{code}``, tools ``/t/{slug}`` (whose
kind, app/tools/kinds.py, renders the page) and the steps their pages report
(POST /api/v1/events)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.api import problems
from app.core.errors import NotFound
from app.core.ratelimit import RateLimiter
from app.core.state import part
from app.events.schemas import EventBatch, EventsAccepted, LinkOpened, ToolViewed
from app.events.service import Tracker, visitor_context
from app.links import service as links
from app.settings import Settings
from app.site import landing
from app.tools import service as tools
from app.tools import steps
from app.tools.kinds import Kinds, ToolPage
from app.visitors import service as visitors
from app.visitors.facts import VisitorFacts
from app.visitors.models import Visitor
from app.visitors.web import page_visitor, provide_visitor, public_id_from


@get("/")
async def home(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Template:
    """The landing page, for visitors who arrive without a link: the brand (base_visitor.html)
    and the published tools as cards."""
    cards = await landing.tool_cards(db_session, part(request, Kinds))
    return Template("home.html", context={"cards": cards})


@get("/s/{code:str}")
async def short_link(
    request: Request[Any, Any, Any],
    code: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    tracker: NamedDependency[Tracker],
    visitor: NamedDependency[Visitor],
) -> Redirect:
    """A tracked link: attribute the visitor to its account and channel, then go to the tool."""
    link = await links.find_active(db_session, code)
    if link is None:
        raise NotFound()
    touch = visitors.Touch.from_query(request.query_params)
    await visitors.attribute(
        db_session, visitor, visitors.Touch(src=link.code, utm=touch.utm, ref=touch.ref), link.id
    )
    await visitors.ensure(db_session, visitor)
    tracker.track(visitor_context(visitor), LinkOpened(code=link.code))
    passthrough = {k: v for k, v in touch.utm.items()}
    if touch.ref:
        passthrough["ref"] = touch.ref
    query = f"?{urlencode(passthrough)}" if passthrough else ""
    return Redirect(f"/t/{link.target_slug}{query}", status_code=302)


@get("/t/{slug:str}")
async def tool_page(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    db_session: NamedDependency[AsyncSession],
) -> Template:
    """A published tool. ``?src=CODE&utm_*=…&ref=…`` are recorded; unknown codes are kept raw."""
    # The busiest page: settings and tracker come straight from the app state, and the visitor
    # is looked up here, since every further dependency would cost a task group per request.
    settings, tracker = part(request, Settings), part(request, Tracker)
    tool, version = await tools.published(db_session, slug)
    touch = visitors.Touch.from_query(request.query_params)
    link = None
    visitor: Visitor | VisitorFacts
    if touch.empty:
        # A returning visitor's plain view: its cached facts, when they hold (no query).
        visitor = await page_visitor(request, db_session)
    else:
        visitor = await provide_visitor(request, db_session)
    if isinstance(visitor, Visitor):
        link = await links.find_active(db_session, touch.src) if touch.src else None
        await visitors.attribute(db_session, visitor, touch, link.id if link else None)
        await visitors.ensure(db_session, visitor)  # a view starts the funnel: worth a row
    ctx = visitor_context(visitor, tool.id, version.number)
    tracker.track(ctx, ToolViewed(src=touch.src, known_src=link is not None or not touch.src))
    page = ToolPage(
        request=request,
        db=db_session,
        visitor=visitor,
        tool=tool,
        version=version,
        ctx=ctx,
        settings=settings,
        tracker=tracker,
    )
    return await part(request, Kinds)[tool.kind].render(page)


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
async def report_steps(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    tracker: NamedDependency[Tracker],
    limiter: NamedDependency[RateLimiter],
    ip: NamedDependency[str],
    data: JSONBody[EventBatch],
) -> EventsAccepted:
    """Accept a batch of client events for the visitor in the cookie; all or nothing."""
    accepted = await steps.report(
        db_session,
        tracker,
        limiter,
        settings,
        public_id=public_id_from(settings, request.scope),
        ip=ip,
        batch=data,
    )
    return EventsAccepted(accepted=accepted)


ROUTES: list[ControllerRouterHandler] = [home, short_link, tool_page, report_steps]
