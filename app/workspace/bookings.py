"""The sales inbox of bookings: open bookings at the top of the leads page (to contact first,
newest first), a lead's own bookings on its page, and marking one contacted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings import service
from app.bookings.models import Booking
from app.bookings.schemas import PARTS, STATES
from app.bookings.views import day_label
from app.core.clock import china_time
from app.core.forms import catch_refusal
from app.core.i18n import gettext as _
from app.core.pages import page_or_partial
from app.core.params import PathId
from app.leads.models import Lead
from app.staff.auth import requires_role
from app.staff.pages import StaffPage
from app.tools.models import Tool

INBOX_SIZE = 20


class MarkForm(msgspec.Struct, kw_only=True):
    state: Annotated[str, msgspec.Meta(max_length=16)] = ""


async def _lookup(db: AsyncSession, key: Any, value: Any, ids: set[int]) -> dict[int, Any]:
    """``value`` by ``key`` for the rows whose key is in ``ids``; no query for none."""
    if not ids:
        return {}
    found = await db.execute(select(key, value).where(key.in_(ids)))
    return dict(found.tuples().all())


async def rows(db: AsyncSession, bookings: Sequence[Booking]) -> list[dict[str, Any]]:
    """Bookings as the staff pages show them: the lead's masked phone, the tool's title, the
    slot in words, the state labelled. Two look-ups for the whole list."""
    phones = await _lookup(db, Lead.id, Lead.phone_masked, {b.lead_id for b in bookings})
    titles = await _lookup(db, Tool.id, Tool.title, {b.tool_id for b in bookings})

    def slot(b: Booking) -> str:
        part = _(PARTS[b.slot_part][0]) if b.slot_part in PARTS else ""
        return f"{day_label(b.slot_day)} · {part}"

    return [
        {
            "id": b.id,
            "lead_id": b.lead_id,
            "phone_masked": phones.get(b.lead_id, ""),
            "tool": titles.get(b.tool_id, ""),
            "service": b.service,
            "slot": slot(b),
            "note": b.note,
            "state": b.state,
            "state_label": _(STATES.get(b.state, b.state)),
            "booked": china_time(b.booked_at),
            "contacted_by": b.contacted_by,
        }
        for b in bookings
    ]


async def inbox(db: AsyncSession) -> list[dict[str, Any]]:
    return await rows(db, await service.inbox(db, INBOX_SIZE))


async def of_lead(db: AsyncSession, lead_id: int) -> list[dict[str, Any]]:
    return await rows(db, await service.for_lead(db, lead_id))


@dataclass(frozen=True, slots=True)
class InboxPage(StaffPage):
    """The open bookings: to contact first, newest first."""

    async def render(self, *, error: str | None = None, status: int = 200) -> Template:
        context = {
            "staff": self.staff,
            "bookings": await inbox(self.db),
            "booking_error": error,
            "can_mark": self.staff.has_role("sales"),
            "on_bookings_page": not self.request.htmx,
        }
        return page_or_partial(self.request, "staff/bookings.html", context, status_code=status)


class BookingsController(Controller):
    path = "/staff/bookings"
    guards = [requires_role("sales", "marketer")]  # noqa: RUF012
    dependencies = {"page": InboxPage.dependency()}  # noqa: RUF012

    @get("/")
    async def index(self, page: NamedDependency[InboxPage]) -> Template:
        """Open bookings: to contact first, newest first."""
        return await page.render()

    @post("/{booking_id:int}", status_code=200, guards=[requires_role("sales")])
    async def mark(
        self,
        page: NamedDependency[InboxPage],
        ip: NamedDependency[str],
        booking_id: PathId,
        data: Annotated[MarkForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        """Mark a booking contacted (or back to contact); audited. The inbox again."""
        async with catch_refusal(page.db) as refused:
            await service.mark(page.db, page.staff, booking_id, data.state, ip)
        if refused:
            return await page.render(error=refused.message, status=refused.status)
        if not page.request.htmx:
            return Redirect("/staff/bookings", status_code=303)
        return await page.render()
