"""The public front page."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.tools import service as tools


@get("/")
async def home(db_session: NamedDependency[AsyncSession]) -> Template:
    """The published tools, for visitors who arrive without a link."""
    return Template("home.html", context={"tools": await tools.list_published(db_session)})


ROUTES: list[ControllerRouterHandler] = [home]
