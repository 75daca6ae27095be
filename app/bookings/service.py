"""Bookings: the rules of a visitor's booking (book, change, cancel) and of the sales inbox
(mark contacted). Each step is written with its event on the lead's timeline in the same
transaction (``Tracker.record``); nothing here commits."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence

from sqlalchemy import case, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings.models import Booking
from app.bookings.schemas import (
    ACTIVE,
    BOOKING_DAYS,
    NOTE_MAX,
    PARTS,
    BookingAnswer,
    Cta,
    SlotChoice,
)
from app.core import clock
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import N_
from app.events.schemas import BookingCancelled, BookingChanged, BookingMade, EventContext
from app.events.service import Tracker
from app.gate.service import GateRequired
from app.staff.audit import audit
from app.staff.schemas import Staff
from app.tools.schemas import PublishedTool, PublishedVersion


class AlreadyBooked(
    Conflict,
    code="already_booked",
    message=N_("You have already booked this. You can change or cancel it below."),
):
    """The lead asked to book a tool they hold an active booking on already."""


class NoBooking(NotFound, code="no_booking", message=N_("You have no booking here yet.")):
    """A change or cancellation while the lead has no active booking on this tool."""


class NotBookable(NotFound, code="not_bookable", message=N_("This tool takes no bookings.")):
    """The tool's call to action is not a booking (a link or a call)."""


class SlotPassed(
    InvalidInput,
    code="slot_passed",
    message=N_("That time has already passed. Please choose a later one."),
):
    """The chosen day and part of the day are already over (China time)."""


def bookable(cta: Cta | None) -> Cta:
    """The tool's call to action when it books; NotBookable otherwise (a link or a call)."""
    if cta is None or cta.mode != "book":
        raise NotBookable()
    return cta


def slot_choices(at: dt.datetime | None = None) -> list[SlotChoice]:
    """The days and parts of a day a visitor may choose now (China time): from today, for
    BOOKING_DAYS days; today only with the parts that have not ended."""
    at = (at or clock.now()).astimezone(clock.CHINA_TZ)
    today = at.date()
    choices = []
    for offset in range(BOOKING_DAYS):
        day = today + dt.timedelta(days=offset)
        parts = tuple(p for p, (_, end) in PARTS.items() if offset or at.hour < end)
        if parts:
            choices.append(SlotChoice(value=day.isoformat(), day=day, parts=parts))
    return choices


def check_slot(day: dt.date, part: str, at: dt.datetime | None = None) -> None:
    """SlotPassed for a part of a day that has ended, InvalidInput beyond the window."""
    if part not in PARTS:
        raise InvalidInput(N_("Please choose a time of day."), fields={"part": "unknown"})
    at = (at or clock.now()).astimezone(clock.CHINA_TZ)
    today = at.date()
    if day < today or (day == today and at.hour >= PARTS[part][1]):
        raise SlotPassed(fields={"day": "passed"})
    if day >= today + dt.timedelta(days=BOOKING_DAYS):
        raise InvalidInput(
            N_("Please choose a day within the next %(days)s days."),
            fields={"day": "too_far"},
            days=BOOKING_DAYS,
        )


def parse_day(text: str) -> dt.date:
    """A day as the form sends it (2026-12-03), or InvalidInput."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(N_("Please choose a day."), fields={"day": "not a date"}) from None


def clean_note(text: str) -> str:
    """The note as kept: trimmed, at most NOTE_MAX characters, line breaks allowed; control and
    invisible formatting characters (NUL, bidirectional overrides) are refused."""
    note = text.replace("\r\n", "\n").strip()
    if len(note) > NOTE_MAX:
        raise InvalidInput(
            N_("The note is too long: at most %(max)s characters."),
            fields={"note": "too_long"},
            max=NOTE_MAX,
        )
    if any(ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in note):
        raise InvalidInput(
            N_("The note contains characters that cannot be shown."),
            fields={"note": "control characters"},
        )
    return note


async def current(db: AsyncSession, lead_id: int | None, tool_id: int) -> Booking | None:
    """The lead's booking for the tool (whatever its state), or None."""
    if lead_id is None:
        return None
    return await db.scalar(
        select(Booking).where(Booking.lead_id == lead_id, Booking.tool_id == tool_id)
    )


def _slot_props(booking: Booking) -> dict[str, str]:
    return {"day": booking.slot_day.isoformat(), "part": booking.slot_part}


async def book(
    db: AsyncSession,
    tracker: Tracker,
    ctx: EventContext,
    tool: PublishedTool,
    version: PublishedVersion,
    cta: Cta,
    *,
    day: dt.date,
    part: str,
    note: str,
) -> Booking:
    """Book the tool's service for the visitor's lead. AlreadyBooked while a booking is open
    (a double tap, a replayed form): nothing changes. After a cancellation it opens again."""
    if ctx.lead_id is None:
        raise GateRequired()
    check_slot(day, part)
    note = clean_note(note)
    booking = await current(db, ctx.lead_id, tool.id)
    if booking is not None and booking.state in ACTIVE:
        raise AlreadyBooked()
    now = clock.now()
    if booking is None:
        booking = Booking(lead_id=ctx.lead_id, tool_id=tool.id, contacted_by="")
        db.add(booking)
    booking.tool_version = version.number
    booking.visitor_id = ctx.visitor_id
    booking.service = cta.service[:64]
    booking.slot_day, booking.slot_part, booking.note = day, part, note
    booking.state, booking.booked_at = "new", now
    booking.contacted_at, booking.contacted_by = None, ""
    try:
        await db.flush()
    except IntegrityError:
        # Another request of the same lead (a double tap) inserted it first.
        raise AlreadyBooked() from None
    tracker.record(db, ctx, BookingMade(service=booking.service, **_slot_props(booking)), now)
    return booking


async def change(
    db: AsyncSession,
    tracker: Tracker,
    ctx: EventContext,
    tool: PublishedTool,
    *,
    day: dt.date,
    part: str,
    note: str,
) -> Booking:
    """A new slot or note for the open booking; it goes back to the inbox as to contact.
    The same slot and note again changes nothing (Conflict)."""
    booking = await _open(db, ctx, tool)
    check_slot(day, part)
    note = clean_note(note)
    if (booking.slot_day, booking.slot_part, booking.note) == (day, part, note):
        raise Conflict(N_("Nothing changed: this is already your booking."))
    booking.slot_day, booking.slot_part, booking.note = day, part, note
    booking.state, booking.contacted_at, booking.contacted_by = "new", None, ""
    booking.booked_at = clock.now()
    await db.flush()
    tracker.record(db, ctx, BookingChanged(service=booking.service, **_slot_props(booking)))
    return booking


async def cancel(
    db: AsyncSession, tracker: Tracker, ctx: EventContext, tool: PublishedTool
) -> Booking:
    """Cancel the open booking (NoBooking when there is none: cancelled twice, or never)."""
    booking = await _open(db, ctx, tool)
    booking.state = "cancelled"
    await db.flush()
    tracker.record(db, ctx, BookingCancelled(service=booking.service))
    return booking


async def _open(db: AsyncSession, ctx: EventContext, tool: PublishedTool) -> Booking:
    if ctx.lead_id is None:
        raise GateRequired()
    booking = await current(db, ctx.lead_id, tool.id)
    if booking is None or booking.state not in ACTIVE:
        raise NoBooking()
    return booking


def answer(booking: Booking, slug: str) -> BookingAnswer:
    return BookingAnswer(
        tool=slug,
        service=booking.service,
        day=booking.slot_day,
        part=booking.slot_part,  # type: ignore[arg-type]
        note=booking.note,
        state=booking.state,  # type: ignore[arg-type]
        booked_at=clock.aware(booking.booked_at),
    )


# --- the sales inbox -------------------------------------------------------------------------


async def inbox(db: AsyncSession, limit: int = 20) -> Sequence[Booking]:
    """Open bookings for the sales inbox: to contact first, then contacted; newest first."""
    rows = await db.scalars(
        select(Booking)
        .where(Booking.state.in_(ACTIVE))
        .order_by(case((Booking.state == "new", 0), else_=1), Booking.booked_at.desc())
        .limit(limit)
    )
    return rows.all()


async def for_lead(db: AsyncSession, lead_id: int) -> Sequence[Booking]:
    rows = await db.scalars(
        select(Booking).where(Booking.lead_id == lead_id).order_by(Booking.booked_at.desc())
    )
    return rows.all()


async def mark(db: AsyncSession, staff: Staff, booking_id: int, state: str, ip: str) -> Booking:
    """Sales marks a booking contacted (or back to contact); audited. A cancelled booking or
    one already in that state is refused (Conflict), so a replayed form changes nothing."""
    if state not in ACTIVE:
        raise InvalidInput(fields={"state": "unknown"})
    booking = await db.get(Booking, booking_id)
    if booking is None:
        raise NotFound()
    if booking.state == "cancelled":
        raise Conflict(N_("The visitor has cancelled this booking."))
    if booking.state == state:
        raise Conflict(N_("This booking is already marked so."))
    booking.state = state
    booking.contacted_at = clock.now() if state == "contacted" else None
    booking.contacted_by = staff.username[:64] if state == "contacted" else ""
    await db.flush()
    await audit(
        db, staff, f"booking.{state}", f"booking:{booking.id}", {"lead": booking.lead_id}, ip
    )
    return booking
