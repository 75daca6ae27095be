"""The booking page of a tool's call to action (/t/{slug}/book: the gate first, then the slot
form, then the confirmation with change and cancel) and the same as JSON
(/api/v1/bookings/{slug})."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Response, Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings import service
from app.bookings.schemas import BookingAnswer, BookingForm, BookingRequest, Cta, cta_of
from app.bookings.views import book_path, booking_view, form_context
from app.core.api import path_param, problems
from app.core.bundles import bundle
from app.core.forms import catch_refusal
from app.core.params import QueryText
from app.events.service import Tracker, visitor_context
from app.gate.service import GateRequired
from app.gate.views import gate_context
from app.settings import Settings
from app.tools import service as tools
from app.tools.schemas import PublishedTool, PublishedVersion
from app.visitors.models import Visitor

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
Slug = Annotated[str, path_param("A published tool whose call to action books.", "renovation")]
NO_STORE = {"Cache-Control": "no-store"}


async def _bookable(db: AsyncSession, slug: str) -> tuple[PublishedTool, PublishedVersion, Cta]:
    tool, version = await tools.published(db, slug)
    cta = service.bookable(cta_of(await tools.definition(db, version)))
    return tool, version, cta


async def _page(
    db: AsyncSession,
    settings: Settings,
    visitor: Visitor,
    tool: PublishedTool,
    cta: Cta,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
    done: str = "",
) -> Template:
    authorised = visitor.lead_id is not None
    booking = await service.current(db, visitor.lead_id, tool.id) if authorised else None
    context: dict[str, Any] = {
        "tool": tool,
        "cta": cta,
        "authorised": authorised,
        "booking": booking_view(booking),
        "cancelled": booking is not None and booking.state == "cancelled",
        "error": error,
        "done": done,
        "action": book_path(tool.slug),
        **form_context(values),
    }
    if not authorised:
        context.update(gate_context(settings, next=book_path(tool.slug)))
    return Template("bookings/book.html", context=context, status_code=status, headers=NO_STORE)


@get("/t/{slug:str}/book")
async def booking_page(
    slug: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    visitor: NamedDependency[Visitor],
    done: FromQuery[QueryText] = "",
) -> Template:
    """The phone gate for a visitor without one; the slot form; or their booking (``done``:
    the step just taken, for its message)."""
    tool, _, cta = await _bookable(db_session, slug)
    return await _page(db_session, settings, visitor, tool, cta, done=done)


@dataclass(frozen=True, slots=True)
class BookingStep:
    """A visitor's step on the booking form of the tool ``{slug}`` names: book, change or
    cancel; the confirmation on success, the form again with the rule's message."""

    slug: FromPath[str]
    db: AsyncSession
    settings: Settings
    tracker: Tracker
    visitor: Visitor

    async def take(self, step: str, data: BookingForm | None = None) -> Template | Redirect:
        db, tracker = self.db, self.tracker
        tool, version, cta = await _bookable(db, self.slug)
        ctx = visitor_context(self.visitor, tool.id, version.number)
        values = {"day": data.day, "part": data.part, "note": data.note} if data else None
        async with catch_refusal(db) as refused:
            if step == "cancel":
                await service.cancel(db, tracker, ctx, tool)
            else:
                assert data is not None
                day = service.parse_day(data.day)
                if step == "book":
                    await service.book(
                        db,
                        tracker,
                        ctx,
                        tool,
                        version,
                        cta,
                        day=day,
                        part=data.part,
                        note=data.note,
                    )
                else:
                    await service.change(
                        db, tracker, ctx, tool, day=day, part=data.part, note=data.note
                    )
        if refused:
            return await _page(
                db,
                self.settings,
                self.visitor,
                tool,
                cta,
                error=refused.message,
                values=values,
                status=refused.status,
            )
        return Redirect(f"{book_path(tool.slug)}?done={step}", status_code=303)


STEP = {"step": bundle(BookingStep)}


@post("/t/{slug:str}/book", status_code=303, dependencies=STEP)
async def book_form(
    step: NamedDependency[BookingStep], data: Annotated[BookingForm, Form]
) -> Template | Redirect:
    """Book: the confirmation on success; the form again with the rule's message."""
    return await step.take("book", data)


@post("/t/{slug:str}/book/change", status_code=303, dependencies=STEP)
async def change_form(
    step: NamedDependency[BookingStep], data: Annotated[BookingForm, Form]
) -> Template | Redirect:
    """Another slot or note for the open booking."""
    return await step.take("change", data)


@post("/t/{slug:str}/book/cancel", status_code=303, dependencies=STEP)
async def cancel_form(step: NamedDependency[BookingStep]) -> Template | Redirect:
    """Cancel the open booking."""
    return await step.take("cancel")


# --- JSON -------------------------------------------------------------------------------------

_WHY = {
    401: "The visitor (cookie) has not verified a phone: `gate_required`.",
    404: "No published tool by that slug, or its call to action is not a booking "
    "(`not_bookable`), or the visitor has no open booking (`no_booking`).",
}


@get(
    "/api/v1/bookings/{slug:str}",
    summary="The visitor's booking for a tool",
    tags=["bookings"],
    responses=problems(400, 401, 404, why=_WHY),
)
async def booking_api(
    slug: Slug,
    db_session: NamedDependency[AsyncSession],
    visitor: NamedDependency[Visitor],
) -> Response[BookingAnswer]:
    """The visitor's (cookie) booking: its slot, note and state (cancelled ones too)."""
    tool, _, _ = await _bookable(db_session, slug)
    if visitor.lead_id is None:
        raise GateRequired()
    booking = await service.current(db_session, visitor.lead_id, tool.id)
    if booking is None:
        raise service.NoBooking()
    return Response(service.answer(booking, tool.slug), headers=NO_STORE)


@post(
    "/api/v1/bookings/{slug:str}",
    status_code=201,
    summary="Book what a tool's call to action offers",
    tags=["bookings"],
    responses={
        **problems(
            400,
            401,
            404,
            409,
            413,
            415,
            why={
                **_WHY,
                400: "The slot has passed (`slot_passed`), is too far ahead, or the note is "
                "too long or holds control characters; `errors` names the field.",
                409: "The visitor already has an open booking for this tool (`already_booked`).",
            },
        ),
    },
)
async def book_api(
    slug: Slug,
    db_session: NamedDependency[AsyncSession],
    tracker: NamedDependency[Tracker],
    visitor: NamedDependency[Visitor],
    data: JSONBody[BookingRequest],
) -> Response[BookingAnswer]:
    """Book a slot (a day within 14 days, a part of it) with a note for the visitor (cookie)
    once their phone is verified. One open booking per tool: a repeat is 409 and changes
    nothing."""
    tool, version, cta = await _bookable(db_session, slug)
    ctx = visitor_context(visitor, tool.id, version.number)
    booking = await service.book(
        db_session, tracker, ctx, tool, version, cta, day=data.day, part=data.part, note=data.note
    )
    return Response(service.answer(booking, tool.slug), status_code=201, headers=NO_STORE)


@post(
    "/api/v1/bookings/{slug:str}/cancel",
    status_code=200,
    summary="Cancel the visitor's booking",
    tags=["bookings"],
    responses=problems(400, 401, 404, why=_WHY),
)
async def cancel_api(
    slug: Slug,
    db_session: NamedDependency[AsyncSession],
    tracker: NamedDependency[Tracker],
    visitor: NamedDependency[Visitor],
) -> Response[BookingAnswer]:
    """Cancel the visitor's open booking; 404 ``no_booking`` when there is none."""
    tool, version, _ = await _bookable(db_session, slug)
    ctx = visitor_context(visitor, tool.id, version.number)
    booking = await service.cancel(db_session, tracker, ctx, tool)
    return Response(service.answer(booking, tool.slug), headers=NO_STORE)


ROUTES: list[ControllerRouterHandler] = [
    booking_page,
    book_form,
    change_form,
    cancel_form,
    booking_api,
    book_api,
    cancel_api,
]
