"""What pages show of a tool's call to action and a visitor's booking: the partial on every
kind's page (templates/bookings/_cta.html) and the booking page's context."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.bookings.models import Booking
from app.bookings.schemas import ACTIVE, PARTS, STATES, Cta, cta_of
from app.bookings.service import slot_choices
from app.core import clock
from app.core.i18n import N_
from app.core.i18n import gettext as _

WEEKDAYS = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)


def book_path(slug: str) -> str:
    return f"/t/{slug}/book"


def day_label(day: dt.date) -> str:
    """A day as people say it: 12月3日 周四, with 今天 / 明天 for the next two."""
    text = _("%(month)s/%(day)s %(weekday)s") % {
        "month": day.month,
        "day": day.day,
        "weekday": _(WEEKDAYS[day.weekday()]),
    }
    offset = (day - clock.china_today()).days
    if offset == 0:
        return _("%(date)s (today)") % {"date": text}
    if offset == 1:
        return _("%(date)s (tomorrow)") % {"date": text}
    return text


def form_context(values: dict[str, str] | None = None) -> dict[str, Any]:
    """The slot form: the days and parts open now, the first open slot chosen by default (so an
    authorised visitor books with one tap), or the values the visitor sent."""
    choices = slot_choices()
    first = choices[0] if choices else None
    chosen = {
        "day": first.value if first else "",
        "part": first.parts[0] if first else "",
        "note": "",
    }
    chosen.update(values or {})
    days = [{"value": c.value, "label": day_label(c.day)} for c in choices]
    parts = [{"value": key, "label": _(label)} for key, (label, _end) in PARTS.items()]
    return {"days": days, "parts": parts, "chosen": chosen}


def call_to_action(definition: Any, slug: str, authorised: bool) -> dict[str, Any] | None:
    """A tool's call to action as its page shows it (templates/bookings/_cta.html; a template
    global, so every kind's page and partial can show it): where its button goes and — for a
    visitor who can book at once — the slot form. None when the tool has none."""
    cta: Cta | None = cta_of(definition)
    if cta is None:
        return None
    view: dict[str, Any] = {
        "label": cta.label,
        "text": cta.text,
        "mode": cta.mode,
        "service": cta.service,
        "href": cta.url or book_path(slug),
        "action": book_path(slug),
        "slug": slug,
        "inline": cta.mode == "book" and authorised,
    }
    if view["inline"]:
        view.update(form_context())
    return view


def booking_view(booking: Booking | None) -> dict[str, Any] | None:
    """The visitor's open booking as their page shows it (None when there is none)."""
    if booking is None or booking.state not in ACTIVE:
        return None
    return {
        "service": booking.service,
        "day": booking.slot_day,
        "day_value": booking.slot_day.isoformat(),  # the slot form's value, not for reading
        "part": booking.slot_part,
        "day_label": day_label(booking.slot_day),
        "part_label": _(PARTS[booking.slot_part][0]) if booking.slot_part in PARTS else "",
        "note": booking.note,
        "state": booking.state,
        "state_label": _(STATES[booking.state]),
    }
