"""The host's view of one grab, for a phone held during a live stream: its state, the actions
that state allows (and only those), countdowns to the start and the end, the stock, and a QR
code of the grab's tracked link to put on screen.

The page follows the grab live through its status stream (``/api/v1/grabs/{slug}/events``,
static/js/host.js) and loads itself again when the state changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import china_time, now
from app.core.i18n import N_
from app.core.qr import qr_data_uri
from app.grabs.schemas import STATE_LABELS, GrabStatus, Mode
from app.grabs.store import GrabInfo
from app.links.models import TrackedLink
from app.links.schemas import CHANNEL_LABELS
from app.links.service import public_url


@dataclass(frozen=True, slots=True)
class Action:
    """One button of the console: the mode it sets, its label, its look and its question."""

    mode: Mode
    label: str  # msgid
    style: str  # "primary" | "danger" | "secondary"
    confirm: str | None = None  # msgid of the question asked first, if any


OPEN_NOW = Action("open", N_("Open now"), "primary")
CLOSE_NOW = Action("closed", N_("Close now"), "danger", N_("Close this grab now?"))
FOLLOW_SCHEDULE = Action("schedule", N_("Follow schedule"), "secondary")


def actions_for(grab: GrabInfo, status: GrabStatus) -> list[Action]:
    """What a host may do now: close an open grab, open a scheduled or closed one; nothing
    for a sold-out one (a marketer restocks it). Going back to the schedule is offered while
    the host's override is on and there is a schedule to go back to."""
    actions: list[Action] = []
    if status.state == "open":
        actions.append(CLOSE_NOW)
    elif status.state in ("scheduled", "closed"):
        actions.append(OPEN_NOW)
    if grab.mode != "schedule" and grab.starts_at is not None and status.state != "sold_out":
        actions.append(FOLLOW_SCHEDULE)
    return actions


def ends_in(grab: GrabInfo, status: GrabStatus, at: dt.datetime) -> int | None:
    """Seconds until an open grab closes by its schedule (None: no end is coming)."""
    if status.state != "open" or grab.mode != "schedule" or grab.ends_at is None:
        return None
    return max(0, int((grab.ends_at - at).total_seconds()) + 1)


def clock_text(seconds: int) -> str:
    """``seconds`` as a countdown reads: 4:05:09, 05:09."""
    h, rest = divmod(max(0, seconds), 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


async def tracked_link(db: AsyncSession, slug: str) -> TrackedLink | None:
    """The link to show for the grab: its newest active live-stream link, else its newest
    active link of any channel."""
    return (
        await db.execute(
            select(TrackedLink)
            .where(TrackedLink.target_slug == slug, TrackedLink.is_active.is_(True))
            .order_by(case((TrackedLink.channel == "live", 0), else_=1), TrackedLink.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def host_context(
    db: AsyncSession, base_url: str, grab: GrabInfo, status: GrabStatus
) -> dict[str, Any]:
    """What grabs/_host.html needs."""
    link = await tracked_link(db, grab.slug)
    url = public_url(base_url, link.code) if link else f"{base_url.rstrip('/')}/t/{grab.slug}"
    at = now()
    return {
        "grab": grab,
        "status": status,
        "state_label": STATE_LABELS[status.state],
        "actions": actions_for(grab, status),
        "starts_in": status.starts_in,
        "ends_in": ends_in(grab, status, at),
        "clock_text": clock_text,
        "starts": china_time(grab.starts_at),
        "ends": china_time(grab.ends_at),
        "link": link,
        "link_channel": CHANNEL_LABELS.get(link.channel, "") if link else "",
        "link_url": url,
        "qr": qr_data_uri(url),
    }
