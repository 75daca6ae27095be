"""The admin's view of the outbox: recent messages and a retry for the dead ones."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from app.core.errors import InvalidInput
from app.core.forms import catch_refusal
from app.core.i18n import N_
from app.core.i18n import gettext as _
from app.core.pages import page_or_partial
from app.core.params import PathId, QueryText
from app.outbox import service
from app.outbox.models import DEAD, PENDING, SENT
from app.staff.auth import requires_role
from app.staff.pages import StaffPage

# How the page names each status (msgids).
STATUS_LABELS = {
    PENDING: N_("Waiting"),
    SENT: N_("Sent"),
    DEAD: N_("Given up"),
}


@dataclass(frozen=True, slots=True)
class OutboxPage(StaffPage):
    """The recent messages (of one ``status``, or all), with a notice or why a retry was
    refused."""

    async def render(
        self,
        status: str = "",
        notice: str | None = None,
        error: str | None = None,
        code: int = 200,
    ) -> Template:
        context = {
            "staff": self.staff,
            "messages": await service.recent(self.db, status or None),
            "counts": await service.counts(self.db),
            "labels": STATUS_LABELS,
            "kinds": service.LABELS,
            "status": status,
            "notice": notice,
            "error": error,
        }
        return page_or_partial(self.request, "staff/outbox.html", context, status_code=code)


class OutboxController(Controller):
    path = "/staff/admin/outbox"
    guards = [requires_role("admin")]  # noqa: RUF012
    dependencies = {"page": OutboxPage.dependency()}  # noqa: RUF012

    @get("")
    async def outbox(
        self, page: NamedDependency[OutboxPage], status: FromQuery[QueryText] = ""
    ) -> Template:
        if status and status not in service.STATUSES:
            raise InvalidInput(N_("Unknown message status."))
        return await page.render(status)

    @post("/{message_id:int}/retry", status_code=200)
    async def retry(
        self, page: NamedDependency[OutboxPage], ip: NamedDependency[str], message_id: PathId
    ) -> Template:
        async with catch_refusal(page.db) as refused:
            await service.retry(page.db, page.staff, message_id, ip)
        if refused:
            return await page.render(error=refused.message, code=refused.status)
        notice = _("The message will be sent again shortly.")
        return await page.render(notice=notice)


ROUTES: list[ControllerRouterHandler] = [OutboxController]
