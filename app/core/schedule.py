"""A tool's window of time (a grab takes claims in it, a draw takes entries): the start and end
checked, the state the host's override and the schedule give at a time (in Python and as SQL),
the countdown to the start, and a time as a staff form shows it.

A windowed row has ``mode`` ("schedule", "open" or "closed": the host's override),
``starts_at`` and ``ends_at`` (either may be unset)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlalchemy import and_, or_

from app.core.clock import china_time
from app.core.errors import InvalidInput
from app.core.i18n import N_

WindowState = Literal["open", "closed", "scheduled"]


def check_window(starts_at: dt.datetime | None, ends_at: dt.datetime | None) -> None:
    """Times carry a zone, and the end comes after the start (InvalidInput)."""
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(fields={name: "needs a time zone (e.g. +08:00 or Z)"})
    if starts_at and ends_at and ends_at <= starts_at:
        raise InvalidInput(
            N_("The end must come after the start."), fields={"ends_at": "before start"}
        )


def form_time(at: dt.datetime | None) -> str:
    """A start or end as a staff form's ``datetime-local`` value (China time); "" for none."""
    return china_time(at).replace(" ", "T") if at else ""


def window_state(
    mode: str,
    starts_at: dt.datetime | None,
    ends_at: dt.datetime | None,
    at: dt.datetime,
    *,
    unscheduled: WindowState,
) -> WindowState:
    """The host's override first, then the schedule; ``unscheduled`` without a start."""
    if mode == "open":
        return "open"
    if mode == "closed":
        return "closed"
    if starts_at is None:
        return unscheduled
    if at < starts_at:
        return "scheduled"
    if ends_at is not None and at >= ends_at:
        return "closed"
    return "open"


def window_open(model: Any, at: dt.datetime) -> Any:
    """SQL for ``window_state(...) == "open"`` on the windowed table ``model``."""
    return or_(
        model.mode == "open",
        and_(
            model.mode == "schedule",
            model.starts_at.is_not(None),
            model.starts_at <= at,
            or_(model.ends_at.is_(None), model.ends_at > at),
        ),
    )


def starts_in(state: str, starts_at: dt.datetime | None, at: dt.datetime) -> int | None:
    """Whole seconds (rounded up) until a scheduled window opens; None in any other state."""
    if state != "scheduled" or starts_at is None:
        return None
    return max(0, int((starts_at - at).total_seconds()) + 1)
