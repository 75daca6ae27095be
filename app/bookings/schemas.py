"""A tool's call to action as configured in its definition, the visitor's booking form and
the API's bodies and answers."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from app.core.bounds import is_safe_url
from app.core.i18n import N_

# What a visitor may choose: a day within BOOKING_DAYS from today (China time) and a part of
# it. A part is offered until it ends (its last hour, China time).
BOOKING_DAYS = 14
PARTS: dict[str, tuple[str, int]] = {
    "morning": (N_("Morning (9:00–12:00)"), 12),
    "afternoon": (N_("Afternoon (13:00–18:00)"), 18),
    "evening": (N_("Evening (18:00–21:00)"), 21),
}
Part = Literal["morning", "afternoon", "evening"]
NOTE_MAX = 200
STATES: dict[str, str] = {
    "new": N_("To contact"),
    "contacted": N_("Contacted"),
    "cancelled": N_("Cancelled"),
}
ACTIVE = ("new", "contacted")
# What a definition may say, as stored (checked when read: an old definition never fails).
_LABEL, _TEXT = 32, 200


class Cta(msgspec.Struct, frozen=True, kw_only=True):
    """A tool's call to action. ``mode`` says what its button does: ``book`` (a booking of
    ``books``, here), ``call`` (a ``tel:`` link) or ``link`` (another page)."""

    label: str
    books: str = ""
    url: str = ""
    text: str = ""

    @property
    def mode(self) -> Literal["book", "call", "link"]:
        if not self.url:
            return "book"
        return "call" if self.url.lower().startswith("tel:") else "link"

    @property
    def service(self) -> str:
        """What a booking is for: ``books``, else the button's own words."""
        return self.books or self.label


def _text(value: Any, cap: int) -> str:
    return value.strip()[:cap] if isinstance(value, str) else ""


def cta_of(definition: Any) -> Cta | None:
    """The call to action of a tool's definition (a dict, or a kind's own Struct), or None.
    ``cta.url`` (``href`` in guides written before) must be a safe link or ``tel:``: an unsafe
    one is dropped, and the button books instead."""
    raw = (
        definition.get("cta") if isinstance(definition, dict) else getattr(definition, "cta", None)
    )
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raw = msgspec.to_builtins(raw)
        if not isinstance(raw, dict):
            return None
    label = _text(raw.get("label"), _LABEL)
    if not label:
        return None
    url = _text(raw.get("url") or raw.get("href"), 512)
    return Cta(
        label=label,
        books=_text(raw.get("books"), _LABEL),
        url=url if url and is_safe_url(url) else "",
        text=_text(raw.get("text"), _TEXT),
    )


class BookingForm(msgspec.Struct, kw_only=True):
    """The visitor's form: strings, checked by the service so each problem has its message
    (the caps here only stop an absurd body early)."""

    day: Annotated[str, msgspec.Meta(max_length=64)] = ""
    part: Annotated[str, msgspec.Meta(max_length=64)] = ""
    note: Annotated[str, msgspec.Meta(max_length=4000)] = ""


class BookingRequest(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """POST /api/v1/bookings/{slug}: book (or change) the visitor's visit."""

    day: dt.date
    part: Part
    note: Annotated[str, msgspec.Meta(max_length=NOTE_MAX)] = ""


class BookingAnswer(msgspec.Struct, kw_only=True, frozen=True):
    """The visitor's booking for a tool: ``state`` new (to contact), contacted or cancelled."""

    tool: str
    service: str
    day: dt.date
    part: Part
    note: str
    state: Literal["new", "contacted", "cancelled"]
    booked_at: dt.datetime


class SlotChoice(msgspec.Struct, frozen=True, kw_only=True):
    """One day the form offers, with the parts of it still open."""

    value: str  # 2026-12-03
    day: dt.date
    parts: tuple[str, ...]
