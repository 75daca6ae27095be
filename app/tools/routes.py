"""Visitor-facing tool pages: tracked links ``/s/{code}`` and tools ``/t/{slug}``, whose kind
(app/tools/kinds.py) renders the page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.state import part
from app.events.schemas import LinkOpened, ToolViewed
from app.events.service import Tracker
from app.settings import Settings
from app.tools import service as tools
from app.tools.kinds import Kinds, ToolPage
from app.visitors import service as visitors
from app.visitors.models import Visitor
from app.visitors.web import context


@get("/s/{code:str}")
async def short_link(
    request: Request[Any, Any, Any],
    code: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    tracker: NamedDependency[Tracker],
    visitor: NamedDependency[Visitor],
) -> Redirect:
    """A tracked link: attribute the visitor to its account and channel, then go to the tool."""
    link = await visitors.resolve_link(db_session, code)
    if link is None:
        raise NotFound()
    touch = visitors.Touch.from_query(request.query_params)
    await visitors.attribute(
        db_session, visitor, visitors.Touch(src=link.code, utm=touch.utm, ref=touch.ref), link
    )
    await visitors.ensure(db_session, visitor)
    tracker.track(context(visitor), LinkOpened(code=link.code))
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
    visitor: NamedDependency[Visitor],
) -> Template:
    """A published tool. ``?src=CODE&utm_*=…&ref=…`` are recorded; unknown codes are kept raw."""
    # The busiest page: settings and tracker come straight from the app state, since every
    # further dependency would cost a task group per request.
    settings, tracker = part(request, Settings), part(request, Tracker)
    tool, version = await tools.published(db_session, slug)
    touch = visitors.Touch.from_query(request.query_params)
    link = await visitors.resolve_link(db_session, touch.src) if touch.src else None
    await visitors.attribute(db_session, visitor, touch, link)
    await visitors.ensure(db_session, visitor)  # a view starts the funnel: worth a row
    ctx = context(visitor, tool.id, version.number)
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


ROUTES: list[ControllerRouterHandler] = [short_link, tool_page]
