"""Draws for staff: the list (/staff/draws), the marketer's create and edit form, one draw's
page (entrants and who referred whom, winners per tier, CSV of both) and, in
app/draws/console.py, the host console. Phones are masked; a role that may see numbers
(sales, and so admins) reveals them on request, and every reveal and export is audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from app.core.clock import china_time, now
from app.core.crypto import DataCipher
from app.core.exports import csv_answer
from app.core.forms import catch_refusal
from app.core.i18n import gettext as _
from app.core.pages import page_or_partial
from app.core.state import part
from app.draws import entries
from app.draws import staff_views as views
from app.draws.console import HostConsole
from app.draws.editing import check_required_tool, stored_passphrase
from app.draws.schemas import STATE_LABELS
from app.draws.service import Draws
from app.draws.staff_forms import DrawForm, parse
from app.staff.audit import audit
from app.staff.auth import requires_role
from app.staff.pages import StaffPage
from app.tools.staff import HOSTS, MARKETERS, see


def may_reveal(page: StaffPage) -> bool:
    """Who may see entrants' full numbers: those who may call leads (sales; admins)."""
    return page.staff.has_role("sales")


@dataclass(frozen=True, slots=True)
class DrawsPage(StaffPage):
    """The staff's draw pages, shown again after a change or with why it was refused."""

    draws: Draws

    async def listing(self) -> Template:
        context = {
            "staff": self.staff,
            "rows": await views.listing(self.db),
            "state_labels": STATE_LABELS,
        }
        return page_or_partial(self.request, "draws/staff_list.html", context)

    def form(
        self, slug: str | None, form: DrawForm, error: str | None = None, status: int = 200
    ) -> Template:
        return Template(
            "draws/staff_form.html",
            context={"staff": self.staff, "slug": slug, "form": form, "error": error},
            status_code=status,
        )

    async def detail(self, slug: str, *, reveal: bool = False) -> Template:
        info, status = await self.draws.read(slug, self.db)
        phones = await views.Phones.load(
            self.db, info.id, part(self.request, DataCipher) if reveal else None
        )
        context = {
            "staff": self.staff,
            "draw": info,
            "status": status,
            "state_label": STATE_LABELS[status.state],
            "entrants": await views.entrants(self.db, info, phones),
            "total": await entries.count(self.db, info.id),
            "shown_limit": views.SHOWN_ENTRANTS,
            "tiers": await views.winners(self.db, info, phones),
            "status_labels": views.STATUS_LABELS,
            "revealed": reveal,
            "can_reveal": may_reveal(self),
            "starts": china_time(info.starts_at),
            "ends": china_time(info.ends_at),
        }
        headers = {"Cache-Control": "no-store"} if reveal else None
        return page_or_partial(self.request, "draws/staff_draw.html", context, headers=headers)


class DrawStaff(Controller):
    path = "/staff/draws"
    guards = [HOSTS]  # noqa: RUF012
    dependencies = {"page": DrawsPage.dependency()}  # noqa: RUF012

    @get("/")
    async def index(self, page: NamedDependency[DrawsPage]) -> Template:
        """Every draw with its state and entrants; hosts open the console from here."""
        return await page.listing()

    @get("/new", guards=[MARKETERS])
    async def new(self, page: NamedDependency[DrawsPage]) -> Template:
        return page.form(None, DrawForm.blank())

    @post("/new", status_code=200, guards=[MARKETERS])
    async def create(
        self, page: NamedDependency[DrawsPage], ip: NamedDependency[str]
    ) -> Template | Response[Any]:
        """Publish a draw from the form (its seed drawn, its commitment fixed)."""
        form = DrawForm.posted(await page.request.form())
        async with catch_refusal(page.db) as refused:
            body = parse(form, form.slug)
            await check_required_tool(page.db, body.requires_tool, body.slug)
            info = await page.draws.create(page.db, body, by=page.staff.username)
            await audit(
                page.db, page.staff, "draw.create", f"draw:{info.id}", {"slug": info.slug}, ip
            )
        if refused:
            return page.form(None, form, refused.message, refused.status)
        return see(f"/staff/draws/{info.slug}")

    @get("/{slug:str}/edit", guards=[MARKETERS])
    async def edit(self, page: NamedDependency[DrawsPage], slug: FromPath[str]) -> Template:
        info = await page.draws.info(slug, page.db)
        return page.form(slug, DrawForm.of(info, await stored_passphrase(page.db, slug)))

    @post("/{slug:str}/edit", status_code=200, guards=[MARKETERS])
    async def update(
        self, page: NamedDependency[DrawsPage], ip: NamedDependency[str], slug: FromPath[str]
    ) -> Template | Response[Any]:
        """New settings, as far as the draw's stage allows (app/draws/editing.py)."""
        await page.draws.info(slug, page.db)
        form = DrawForm.posted(await page.request.form())
        form.slug = slug
        async with catch_refusal(page.db) as refused:
            info = await page.draws.update(page.db, slug, parse(form, slug), by=page.staff.username)
            await audit(page.db, page.staff, "draw.update", f"draw:{info.id}", {"slug": slug}, ip)
        if refused:
            return page.form(slug, form, refused.message, refused.status)
        return see(f"/staff/draws/{slug}")

    @get("/{slug:str}", guards=[MARKETERS])
    async def detail(self, page: NamedDependency[DrawsPage], slug: FromPath[str]) -> Template:
        """One draw: its entrants (masked), who referred whom, the winners of each tier."""
        return await page.detail(slug)

    @post("/{slug:str}/reveal", status_code=200, guards=[MARKETERS, requires_role("sales")])
    async def reveal(
        self, page: NamedDependency[DrawsPage], ip: NamedDependency[str], slug: FromPath[str]
    ) -> Template:
        """The same page with full numbers, on an explicit request, audited."""
        info = await page.draws.info(slug, page.db)
        await audit(page.db, page.staff, "draw.reveal_phones", f"draw:{info.id}", {}, ip)
        return await page.detail(slug, reveal=True)

    @get("/{slug:str}/entrants.csv", guards=[MARKETERS])
    async def entrants_csv(
        self, page: NamedDependency[DrawsPage], ip: NamedDependency[str], slug: FromPath[str]
    ) -> Response[bytes]:
        """Every entrant: masked numbers, full ones for a role that may see them (audited)."""
        info, phones = await _export(page, slug, "entrants", ip)
        rows = await views.entrants(page.db, info, phones, limit=None)
        return csv_answer(
            f"{slug}-entrants.csv",
            [_("Entry"), _("Phone"), _("Chances"), _("Share code"), _("Referred by entry"),
             _("Referrer's phone"), _("Entered at")],
            ([r["id"], r["phone"], r["chances"], r["code"], r["referred_by"] or "",
              r["referrer_phone"], r["entered"]] for r in reversed(rows)),
        )  # fmt: skip

    @get("/{slug:str}/winners.csv", guards=[MARKETERS])
    async def winners_csv(
        self, page: NamedDependency[DrawsPage], ip: NamedDependency[str], slug: FromPath[str]
    ) -> Response[bytes]:
        """Every tier's winners and reserves with their status (audited)."""
        info, phones = await _export(page, slug, "winners", ip)
        tiers = await views.winners(page.db, info, phones)
        return csv_answer(
            f"{slug}-winners.csv",
            [_("Tier"), _("Prize"), _("Order"), _("Reserve"), _("Entry"), _("Phone"),
             _("Status"), _("Claim by"), _("Claimed at"), _("Voucher code")],
            ([t["n"], t["name"], p["rank"], _("Yes") if p["reserve"] else _("No"), p["entry_id"],
              p["phone"], _(views.STATUS_LABELS[p["status"]]), p["claim_by"], p["claimed_at"],
              p["voucher_code"]] for t in tiers for p in t["picks"]),
        )  # fmt: skip


async def _export(page: DrawsPage, slug: str, what: str, ip: str) -> tuple[Any, views.Phones]:
    info = await page.draws.info(slug, page.db)
    revealed = may_reveal(page)
    phones = await views.Phones.load(
        page.db, info.id, part(page.request, DataCipher) if revealed else None
    )
    detail = {"what": what, "revealed": revealed, "at": now().isoformat()}
    await audit(page.db, page.staff, "draw.export", f"draw:{info.id}", detail, ip)
    return info, phones


STAFF_ROUTES: list[ControllerRouterHandler] = [DrawStaff, HostConsole]
