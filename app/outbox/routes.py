"""The admin's view of the outbox: recent messages and a retry for the dead ones."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import InvalidInput
from app.core.forms import catch_refusal
from app.core.i18n import N_
from app.core.i18n import gettext as _
from app.core.params import PathId, QueryText
from app.outbox import service
from app.outbox.models import DEAD, PENDING, SENT
from app.staff.auth import requires_role
from app.staff.schemas import Staff

# How the page names each status (msgids).
STATUS_LABELS = {
    PENDING: N_("Waiting"),
    SENT: N_("Sent"),
    DEAD: N_("Given up"),
}


class OutboxController(Controller):
    path = "/staff/admin/outbox"
    guards = [requires_role("admin")]  # noqa: RUF012

    async def _page(
        self,
        request: HTMXRequest,
        db: AsyncSession,
        staff: Staff,
        status: str = "",
        notice: str | None = None,
        error: str | None = None,
        code: int = 200,
    ) -> Template:
        context = {
            "staff": staff,
            "messages": await service.recent(db, status or None),
            "counts": await service.counts(db),
            "labels": STATUS_LABELS,
            "kinds": service.LABELS,
            "status": status,
            "notice": notice,
            "error": error,
        }
        name = "staff/_outbox.html" if request.htmx else "staff/outbox.html"
        return Template(name, context=context, status_code=code)

    @get("")
    async def outbox(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
        status: FromQuery[QueryText] = "",
    ) -> Template:
        if status and status not in service.STATUSES:
            raise InvalidInput(N_("Unknown message status."))
        return await self._page(request, db_session, staff, status)

    @post("/{message_id:int}/retry", status_code=200)
    async def retry(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
        ip: NamedDependency[str],
        message_id: PathId,
    ) -> Template:
        async with catch_refusal(db_session) as refused:
            await service.retry(db_session, staff, message_id, ip)
        if refused:
            return await self._page(
                request, db_session, staff, error=refused.message, code=refused.status
            )
        notice = _("The message will be sent again shortly.")
        return await self._page(request, db_session, staff, notice=notice)


ROUTES: list[ControllerRouterHandler] = [OutboxController]
