"""A marketer's edit of a published draw. The published rules bind once people rely on them:

- before anyone has entered (and while the window is not open) everything may change;
- once someone has entered, or the window is open, the prizes and the rules (tiers, reserves,
  one win per phone, eligibility, referrals, drand) stay as published; the title, the
  description, the image, the schedule and the time to claim may still change;
- once the entries are closed and frozen, only the title, the description and the image.

A change of the published rules (the tool's definition) publishes a new version of the tool.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import now
from app.core.errors import Conflict, InvalidInput
from app.core.i18n import N_
from app.core.schedule import check_window
from app.draws.definition import (
    LOOKS,
    SCHEDULE,
    DrawInfo,
    columns,
    definition,
    info_of,
    load_draw,
    passphrase_of,
    rules_of,
    state_of,
    take_turn,
)
from app.draws.models import DrawEntry
from app.draws.schemas import DrawCreate
from app.tools import service as tools
from app.tools.models import Tool


class RulesFixed(
    Conflict,
    code="rules_fixed",
    message=N_(
        "People have entered (or the entries are open): the prizes and the rules stay as "
        "published. The title, description, image, schedule and time to claim can change."
    ),
):
    """An edit changes the prizes or rules after someone entered or while entries are open."""


class DrawFrozen(
    Conflict,
    code="draw_frozen",
    message=N_(
        "The entries are closed and frozen: only the title, description and image can change."
    ),
):
    """An edit changes more than the title, description or image after the close."""


async def check_required_tool(db: AsyncSession, slug: str, own: str) -> None:
    """A required tool must be another published tool of this installation."""
    if not slug:
        return
    found = await db.scalar(
        select(Tool.id).where(Tool.slug == slug, Tool.status == "published", Tool.slug != own)
    )
    if found is None:
        raise InvalidInput(
            N_("No other published tool has the address %(slug)s."),
            fields={"requires_tool": "unknown"},
            slug=slug,
        )


def _rules(row: Any) -> dict[str, Any]:
    return {
        "tiers": list(row["tiers"]),
        "one_win_per_phone": row["one_win_per_phone"],
        "requires_tool": row["requires_tool"],
        "passphrase": row["passphrase"],
        "referrals": row["referrals"],
        "referral_cap": row["referral_cap"],
        "use_drand": row["use_drand"],
    }


async def update_draw(db: AsyncSession, slug: str, data: DrawCreate, by: str = "") -> DrawInfo:
    """The draw's new settings (``data.slug`` is ignored: a draw keeps its address);
    RulesFixed or DrawFrozen when the change is no longer allowed, InvalidInput when bad."""
    check_window(data.starts_at, data.ends_at)
    passphrase = passphrase_of(data)
    await check_required_tool(db, data.requires_tool, slug)
    tool, row = await take_turn(db, slug)
    info = info_of(tool, row)
    wanted = rules_of(data, passphrase)
    current = _rules({k: getattr(row, k) for k in wanted})
    schedule = columns(data, SCHEDULE)
    if row.closed_at is not None:
        if wanted != current or schedule != columns(info, SCHEDULE):
            raise DrawFrozen()
    elif wanted != current:
        entered = await db.scalar(select(exists().where(DrawEntry.draw_id == row.id)))
        if entered or state_of(info, now()) == "open":
            raise RulesFixed()
    changes = {**wanted, **columns(data, LOOKS)}
    if row.closed_at is None:
        changes |= schedule
    for name, value in changes.items():
        setattr(row, name, value)
    published = definition(data)
    if published != tool.draft:
        await tools.publish_version(db, tool, published, by)
    await db.flush()
    return info_of(tool, row)


async def stored_passphrase(db: AsyncSession, slug: str) -> str:
    """The draw's passphrase as stored (normalised), for the edit form."""
    _, row = await load_draw(db, slug)
    return row.passphrase
