"""Staff pages for leads and funnels: the leads list, one lead, the "show number" action, and
a tool's funnel. Phone numbers are masked everywhere except in the audited reveal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery, QueryParameter
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.crypto import DataCipher
from app.core.forms import catch_refusal
from app.core.pages import page_or_partial
from app.core.params import PathId, QueryText
from app.core.phone import dial, display
from app.core.state import part
from app.gate.service import Gate
from app.leads import service
from app.leads.schemas import (
    LEAD_STATUSES,
    NO_LINK,
    STAFF_STATUSES,
    LeadFilter,
    LeadUpdate,
)
from app.staff.auth import current_staff, requires_role, requires_staff
from app.staff.pages import StaffPage
from app.staff.schemas import Staff
from app.vouchers import service as vouchers
from app.workspace import bookings, dashboard, queries
from app.workspace.labels import LABELS

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
# Kept from caches and history: a page that carries a full phone number.
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class LeadPage(StaffPage):
    """One lead (``{lead_id}``) as staff see it; after a change, saved or with why not."""

    lead_id: PathId

    async def render(
        self,
        *,
        partial: str = "staff/_lead_manage.html",
        error: str | None = None,
        saved: bool = False,
        status_code: int = 200,
        phone: dict[str, str] | None = None,
    ) -> Template:
        db, staff, lead_id = self.db, self.staff, self.lead_id
        context = {
            "staff": staff,
            "lead": await queries.lead_detail(db, lead_id),
            "vouchers": await vouchers.for_lead(db, lead_id),
            "lead_bookings": await bookings.of_lead(db, lead_id),
            "statuses": STAFF_STATUSES,
            "labels": LABELS,
            "can_edit": staff.has_role("sales"),
            "can_reveal": staff.has_role("sales"),
            "error": error,
            "saved": saved,
            "phone": phone,
        }
        return page_or_partial(
            self.request,
            "staff/lead.html",
            context,
            partial=partial,
            status_code=status_code,
            headers=NO_STORE if phone else None,
        )


class LeadsController(Controller):
    path = "/staff/leads"
    guards = [requires_role("sales", "marketer")]  # noqa: RUF012
    dependencies = {"lead_page": LeadPage.dependency()}  # noqa: RUF012

    @get("/")
    async def leads(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
        status: FromQuery[QueryText] = "",
        channel: FromQuery[QueryText] = "",
        account: FromQuery[QueryText] = "",
        tool: FromQuery[QueryText] = "",
        start: Annotated[str, QueryParameter(name="from", max_length=16)] = "",
        end: Annotated[str, QueryParameter(name="to", max_length=16)] = "",
        page: FromQuery[QueryText] = "",
    ) -> Template:
        """Leads, newest first, 50 a page; bad filters re-show the form with a message."""
        # As typed: shown again in the filter form.
        raw = {
            "status": status,
            "channel": channel,
            "account": account,
            "tool": tool,
            "from": start,
            "to": end,
        }
        async with catch_refusal() as refused:
            wanted = LeadFilter.parse({**raw, "page": page})
            listing = await queries.list_leads(db_session, wanted)
        if refused:
            listing = await queries.empty_page(db_session)
        context = {
            "staff": staff,
            "listing": listing,
            "raw": raw,
            "error": refused.message,
            "statuses": LEAD_STATUSES,
            "no_link": NO_LINK,
            "labels": LABELS,
        }
        if not request.htmx:
            # New bookings first: the visitors who asked for a visit (app/bookings).
            context["bookings"] = await bookings.inbox(db_session)
            context["booking_error"] = None
            context["can_mark"] = staff.has_role("sales")
        return page_or_partial(request, "staff/leads.html", context, status_code=refused.status)

    @get("/{lead_id:int}")
    async def lead(self, lead_page: NamedDependency[LeadPage]) -> Template:
        """One lead: needs, consents, status, owner, notes and the whole timeline."""
        return await lead_page.render()

    @post("/{lead_id:int}", status_code=200, guards=[requires_role("sales")])
    async def update(
        self,
        lead_page: NamedDependency[LeadPage],
        ip: NamedDependency[str],
        data: Annotated[LeadUpdate, Form],
    ) -> Template:
        """Status, owner, a new note: all checked first, each change audited."""
        lead = await service.get(lead_page.db, lead_page.lead_id)
        async with catch_refusal(lead_page.db) as refused:
            await service.update_lead(lead_page.db, lead_page.staff, lead, data, ip)
        if refused:
            return await lead_page.render(error=refused.message, status_code=refused.status)
        return await lead_page.render(saved=True)

    @post("/{lead_id:int}/phone", status_code=200, guards=[requires_role("sales")])
    async def reveal_phone(
        self,
        lead_page: NamedDependency[LeadPage],
        cipher: NamedDependency[DataCipher],
        ip: NamedDependency[str],
    ) -> Template:
        """The full number, on an explicit request, recorded in the audit trail."""
        lead = await service.get(lead_page.db, lead_page.lead_id)
        phone = await service.reveal_phone(lead_page.db, cipher, lead_page.staff, lead, ip)
        return await lead_page.render(
            partial="staff/_lead_phone.html",
            phone={"display": display(phone), "tel": dial(phone)},
        )


@get("/staff/", guards=[requires_staff])
async def home(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Template:
    """The dashboard: today's and this week's figures (and, for admins, SMS budget alerts)."""
    # The staff member and the gate come straight from the request and the app state: the
    # page staff open most, and every further dependency costs a task group per request.
    staff = current_staff(request)
    assert staff is not None  # the guard let only staff in
    figures = await dashboard.figures(db_session)
    context: dict[str, Any] = {"staff": staff, "figures": figures}
    if staff.role == "admin":
        # SMS budget reached or nearly reached (shared counters): the admin's banner.
        context["sms_alerts"] = await part(request, Gate).budget_alerts()
    return Template("staff/dashboard.html", context=context)


ROUTES: list[ControllerRouterHandler] = [home, LeadsController, bookings.BookingsController]
