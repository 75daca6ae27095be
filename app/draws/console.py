"""The host console of a draw (/staff/draws/{slug}/console, hosts and marketers), made for a
phone held during a live stream: open or close the entries, the entrant count live, draw the
tiers one by one — each draw and the close asked once more before anything happens (Cancel
changes nothing) — and call up reserves for winners who did not claim in time. Nothing here
picks or leaves out a person: the service decides every winner (docs/draws.md). Every action
is audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.forms import catch_refusal
from app.core.i18n import N_
from app.core.i18n import gettext as _
from app.core.pages import page_or_partial
from app.draws import staff_views as views
from app.draws.schemas import DrawnTier
from app.draws.service import Draws
from app.staff.audit import audit
from app.staff.pages import StaffPage
from app.tools.staff import HOSTS

ACTIONS = ("open", "close", "schedule", "draw", "redraw")
ASKED = {  # the actions asked once more, and their question
    "close": N_("Close the entries now? The entrant list is frozen and cannot reopen."),
    "draw": N_("Draw %(tier)s now? Winners are picked at once and shown everywhere."),
}


class ConsoleForm(msgspec.Struct, kw_only=True):
    action: str = ""
    tier: str = ""
    confirm: str = ""


@dataclass(frozen=True, slots=True)
class ConsolePage(StaffPage):
    """The host console of one draw, shown again after an action or with why it was refused."""

    draws: Draws

    async def render(
        self,
        slug: str,
        *,
        error: str | None = None,
        status_code: int = 200,
        confirm: dict[str, Any] | None = None,
        drawn: DrawnTier | None = None,
    ) -> Template:
        info, status = await self.draws.read(slug, self.db)
        context = {
            "staff": self.staff,
            "draw": info,
            "status": status,
            "error": error,
            "confirm": confirm,
            "drawn": drawn,
            **await views.console(self.db, info, status),
        }
        return page_or_partial(self.request, "draws/console.html", context, status_code=status_code)


def _tier(text: str, tiers: int) -> int | None:
    try:
        n = int(text)
    except ValueError:
        return None
    return n if 1 <= n <= tiers else None


class HostConsole(Controller):
    path = "/staff/draws/{slug:str}/console"
    guards = [HOSTS]  # noqa: RUF012
    dependencies = {"page": ConsolePage.dependency()}  # noqa: RUF012

    @get("/")
    async def show(self, page: NamedDependency[ConsolePage], slug: FromPath[str]) -> Template:
        return await page.render(slug)

    @post("/", status_code=200)
    async def act(
        self,
        page: NamedDependency[ConsolePage],
        ip: NamedDependency[str],
        slug: FromPath[str],
        data: URLEncodedBody[ConsoleForm],
    ) -> Template:
        """One tap: the question first for a close or a draw, then the action (audited)."""
        draws = page.draws
        info = await draws.info(slug, page.db)
        tier = _tier(data.tier, len(info.tiers))
        if data.action not in ACTIONS or (data.action in ("draw", "redraw") and tier is None):
            return await page.render(slug, error=_("Unknown action."), status_code=400)
        if data.action in ASKED and data.confirm != "yes":
            name = info.tiers[tier - 1].name if tier else ""
            question = _(ASKED[data.action]) % {"tier": name}
            confirm = {"action": data.action, "tier": data.tier, "question": question}
            return await page.render(slug, confirm=confirm)
        drawn = None
        async with catch_refusal(page.db) as refused:
            drawn, detail = await _perform(draws, page.db, slug, data.action, tier)
            await audit(page.db, page.staff, f"draw.{data.action}", f"draw:{info.id}", detail, ip)
        if refused:
            return await page.render(slug, error=refused.message, status_code=refused.status)
        return await page.render(slug, drawn=drawn)


async def _perform(
    draws: Draws, db: AsyncSession, slug: str, action: str, tier: int | None
) -> tuple[DrawnTier | None, dict[str, Any]]:
    """The host's action (one of ACTIONS; a tier for draw and redraw): the tier drawn, if it
    was a draw, and what the action's audit row records."""
    detail: dict[str, Any] = {"slug": slug}
    if action == "open":
        await draws.open(db, slug)
    elif action == "schedule":
        await draws.schedule(db, slug)
    elif action == "close":
        closed = await draws.close(db, slug)
        detail |= {"entrants": closed.entrants_count, "hash": closed.entrants_hash}
    elif action == "draw" and tier is not None:
        drawn = await draws.draw_tier(db, slug, tier)
        detail |= {"tier": tier, "winners": len(drawn.winners), "replayed": drawn.replayed}
        return drawn, detail
    elif tier is not None:
        detail |= {"tier": tier, "called_up": await draws.redraw(db, slug, tier)}
    return None, detail
