"""The funnel page: a tool's funnel for a date range, by account or channel."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from app.analytics.funnel import BREAKDOWNS, funnel
from app.core.forms import catch_refusal
from app.core.i18n import gettext as _
from app.core.pages import page_or_partial
from app.core.params import QueryText
from app.core.state import part
from app.leads.schemas import closed_day_range
from app.staff.auth import requires_role
from app.staff.schemas import Staff
from app.tools.kinds import Kinds
from app.workspace import queries
from app.workspace.labels import LABELS

# A tool whose kind this installation no longer serves still has its views counted.
UNKNOWN_KIND_STEPS: tuple[str, ...] = ("tool_viewed",)


def funnel_steps(kinds: Kinds, kind: str) -> tuple[str, ...]:
    """The steps of the funnel of a tool of ``kind``: those its kind declares."""
    return kinds[kind].funnel if kind in kinds else UNKNOWN_KIND_STEPS


class FunnelController(Controller):
    path = "/staff/funnels"
    guards = [requires_role("marketer")]  # noqa: RUF012

    @get("/")
    async def funnels(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
        tool: FromQuery[QueryText] = "",
        start: Annotated[str, QueryParameter(name="from", max_length=16)] = "",
        end: Annotated[str, QueryParameter(name="to", max_length=16)] = "",
        by: FromQuery[QueryText] = "none",
    ) -> Template:
        """A tool's funnel for a date range (last 30 days by default), by account or channel."""
        tools = await queries.tool_options(db_session)
        chosen = next(
            (t for t in tools if t.slug == tool), None if tool else next(iter(tools), None)
        )
        table, days = None, None
        async with catch_refusal() as refused:
            days = closed_day_range(start, end)
        error, status_code = refused.message, refused.status
        if tool and chosen is None:
            error, status_code = _("Unknown tool."), 404
        if by not in BREAKDOWNS:
            by = "none"
        if error is None and chosen is not None and days is not None:
            assert days.start_utc is not None and days.end_utc is not None
            table = await funnel(
                db_session,
                chosen.id,
                funnel_steps(part(request, Kinds), chosen.kind),
                days.start_utc,
                days.end_utc,
                by,
            )
        context: dict[str, Any] = {
            "staff": staff,
            "tools": tools,
            "tool": chosen,
            "days": days,
            "raw": {"from": start, "to": end},
            "by": by,
            "funnel": table,
            "error": error,
            "labels": LABELS,
        }
        return page_or_partial(request, "staff/funnel.html", context, status_code=status_code)


ROUTES: list[ControllerRouterHandler] = [FunnelController]
