"""A grab's settings: the staff form parsed into the API's body, the schedule checked, a grab
created or looked up, a grab row read back as the GrabInfo the rest of the feature uses, and
the state its settings put it in at a given time."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import CHINA_TZ
from app.core.errors import InvalidInput, NotFound
from app.core.i18n import N_
from app.core.schedule import check_window, window_state
from app.grabs.models import Grab
from app.grabs.schemas import GrabCreate, GrabForm, GrabUpdate, State
from app.grabs.store import GrabInfo
from app.tools import service as tools
from app.tools.models import Tool
from app.tools.scheduled import frozen_of


class GrabNotFound(NotFound, message=N_("This grab does not exist or is no longer available.")):
    """No grab has this slug (or it is not published, where it must be)."""


def state_of(grab: GrabInfo, stock_left: int, at: dt.datetime) -> State:
    """sold_out beats everything; then the host's override; then the schedule (a grab with
    no start is closed)."""
    if stock_left <= 0:
        return "sold_out"
    return window_state(grab.mode, grab.starts_at, grab.ends_at, at, unscheduled="closed")


def takes_claims(grab: GrabInfo, at: dt.datetime) -> bool:
    return state_of(grab, 1, at) == "open"


def info_of(tool: Tool, grab: Grab) -> GrabInfo:
    """The grab row (and its tool) as the frozen value the feature passes around."""
    return frozen_of(GrabInfo, tool, grab)


def definition(title: str, offer: str) -> dict[str, str]:
    """The grab tool's definition (what its versions record)."""
    return {"title": title, "offer": offer}


def parse_form(form: GrabForm, *, with_slug: bool) -> GrabCreate | GrabUpdate:
    """The staff form (strings; times in China time) → the API's typed body, or InvalidInput."""

    def when(raw: str, name: str) -> dt.datetime | None:
        text = raw.strip()
        if not text:
            return None
        try:
            return dt.datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)
        except ValueError:
            raise InvalidInput(fields={name: "not a date and time"}) from None

    def number(raw: str, name: str) -> int:
        try:
            return int(raw.strip())
        except ValueError:
            raise InvalidInput(fields={name: "not a whole number"}) from None

    values = {
        "title": form.title.strip(),
        "stock": number(form.stock, "stock"),
        "per_phone_limit": number(form.per_phone_limit, "per_phone_limit"),
        "starts_at": when(form.starts_at, "starts_at"),
        "ends_at": when(form.ends_at, "ends_at"),
        "offer": form.offer.replace("\r\n", "\n").strip(),
        "image_url": form.image_url.strip(),
        "voucher_prefix": form.voucher_prefix.strip().upper(),
        "voucher_valid_days": number(form.voucher_valid_days, "voucher_valid_days"),
        "voucher_where": form.voucher_where.replace("\r\n", "\n").strip(),
    }
    target: type[GrabCreate] | type[GrabUpdate] = GrabUpdate
    if with_slug:
        values["slug"] = form.slug.strip().lower()
        target = GrabCreate
    try:
        return msgspec.convert(values, target)
    except msgspec.ValidationError as exc:
        match = re.search(r"at `\$\.(\w+)`", str(exc))
        raise InvalidInput(fields={match.group(1) if match else "form": str(exc)}) from None


# The grab's columns a staff body sets as they are, when the grab is made and at each edit (the
# stock is not one of them: an edit restocks through the claim store).
SETTINGS = (
    "offer",
    "image_url",
    "per_phone_limit",
    "starts_at",
    "ends_at",
    "voucher_prefix",
    "voucher_valid_days",
    "voucher_where",
)


def settings_of(data: GrabUpdate) -> dict[str, Any]:
    """The grab row's columns of ``SETTINGS``, as ``data`` gives them."""
    return {name: getattr(data, name) for name in SETTINGS}


async def create_grab(db: AsyncSession, data: GrabCreate, by: str = "") -> GrabInfo:
    """A published grab tool and its grab row; Conflict when the slug is taken."""
    check_window(data.starts_at, data.ends_at)
    tool = await tools.create_and_publish(
        db,
        slug=data.slug,
        kind="grab",
        title=data.title,
        definition=definition(data.title, data.offer),
        by=by,
    )
    grab = Grab(
        tool_id=tool.id,
        initial_stock=data.stock,
        stock=data.stock,
        mode="schedule",
        **settings_of(data),
    )
    db.add(grab)
    await db.flush()
    return info_of(tool, grab)


async def load_grab(db: AsyncSession, slug: str) -> tuple[Tool, Grab]:
    """The grab tool at ``slug`` (published or not) and its grab row; GrabNotFound."""
    found = await tools.kind_row(db, Grab, "grab", slug)
    if found is None:
        raise GrabNotFound()
    return found
