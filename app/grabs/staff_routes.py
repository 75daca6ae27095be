"""Grabs for staff: the admin JSON API (create, open now, close now) and the host console
with the marketer's create/edit form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, URLEncodedBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.api import problems
from app.core.clock import china_time
from app.core.errors import DomainError
from app.core.forms import catch_refusal
from app.core.i18n import gettext as _
from app.db.uow import after_commit, after_rollback
from app.grabs.definition import parse_form
from app.grabs.host import host_context
from app.grabs.schemas import STATE_LABELS, GrabCreate, GrabForm, GrabSlug, GrabStatus
from app.grabs.service import Grabs
from app.staff.pages import StaffPage
from app.staff.schemas import Staff
from app.tools.scheduled import form_values
from app.tools.staff import HOSTS, MARKETERS, create_api, host_api, see

CONSOLE = "/staff/grabs/"

# The admin JSON API.


@post(**create_api("grabs", "Create a grab"))
async def api_create(
    db_session: NamedDependency[AsyncSession],
    grabs: NamedDependency[Grabs],
    staff: NamedDependency[Staff],
    data: JSONBody[GrabCreate],
) -> GrabStatus:
    """Create and publish a grab (scheduled by starts_at/ends_at, or opened by a host)."""
    info = await grabs.create(db_session, data, by=staff.username)
    _announce_when_durable(db_session, grabs, info.id)
    return await grabs.status(info.slug, db_session)


def _announce_when_durable(db: AsyncSession, grabs: Grabs, grab_id: int) -> None:
    """A staff change to grab ``grab_id`` is announced once it has committed, never before and
    never if the commit fails (app/db/uow.py). The answer is read in the same uncommitted
    transaction, so this process's caches may hold what never became durable: they drop it if
    the transaction ends without committing."""
    after_commit(db, lambda: grabs.announce(grab_id))
    after_rollback(db, lambda: grabs.live.forget_here(("grab", grab_id)))


async def _set_mode(db: AsyncSession, grabs: Grabs, slug: str, mode: str) -> GrabStatus:
    info = await grabs.set_mode(db, slug, mode)  # type: ignore[arg-type]
    _announce_when_durable(db, grabs, info.id)
    return await grabs.status(info.slug, db)


_HOST_API: dict[str, Any] = {
    **host_api("grabs"),
    "responses": problems(400, 401, 403, 415, why={404: "No grab by that slug."}),
}


@post("/api/v1/admin/grabs/{slug:str}/open", summary="Open a grab now", **_HOST_API)
async def api_open(
    slug: GrabSlug, db_session: NamedDependency[AsyncSession], grabs: NamedDependency[Grabs]
) -> GrabStatus:
    """Open the grab now, whatever its schedule (marketer or host token)."""
    return await _set_mode(db_session, grabs, slug, "open")


@post("/api/v1/admin/grabs/{slug:str}/close", summary="Close a grab now", **_HOST_API)
async def api_close(
    slug: GrabSlug, db_session: NamedDependency[AsyncSession], grabs: NamedDependency[Grabs]
) -> GrabStatus:
    """Close the grab now, whatever its schedule (marketer or host token)."""
    return await _set_mode(db_session, grabs, slug, "closed")


# The host console and the marketer's form.


class ModeForm(msgspec.Struct, kw_only=True):
    mode: str = ""


@dataclass(frozen=True, slots=True)
class GrabsPage(StaffPage):
    """The host console's pages and the marketer's form, shown again after a change or with
    why it was refused."""

    grabs: Grabs

    async def listing(self) -> Template:
        """Every grab with its state; the list alone (#grab-list) for htmx."""
        context = {
            "staff": self.staff,
            "rows": [
                {
                    "grab": info,
                    "status": status,
                    "starts": china_time(info.starts_at),
                    "ends": china_time(info.ends_at),
                }
                for info, status in await self.grabs.console(self.db)
            ],
            "state_labels": STATE_LABELS,
        }
        partial = self.request.htmx and self.request.htmx.target == "grab-list"
        name = "grabs/_console_list.html" if partial else "grabs/console.html"
        return Template(name, context=context)

    async def host(self, slug: str, error: str | None = None, status: int = 200) -> Template:
        """The host's page of one grab, or its part (#grab-host) for htmx."""
        info = await self.grabs.info(slug, self.db)
        state = await self.grabs.status(slug, self.db)
        context = {
            "staff": self.staff,
            "error": error,
            **await host_context(self.db, str(self.request.base_url), info, state),
        }
        partial = self.request.htmx and self.request.htmx.target == "grab-host"
        name = "grabs/_host.html" if partial else "grabs/host.html"
        return Template(name, context=context, status_code=status)

    def form(self, slug: str | None, form: GrabForm, exc: DomainError | None = None) -> Template:
        """The create (``slug`` None) or edit form, with why it was refused."""
        return Template(
            "grabs/form.html",
            context={
                "staff": self.staff,
                "slug": slug,
                "form": form,
                "error": exc.translated if exc else None,
                "fields": sorted(exc.fields) if exc else [],
            },
            status_code=exc.status if exc else 200,
        )


class GrabConsole(Controller):
    path = "/staff/grabs"
    guards = [HOSTS]  # noqa: RUF012
    dependencies = {"page": GrabsPage.dependency()}  # noqa: RUF012

    @get("/")
    async def index(self, page: NamedDependency[GrabsPage]) -> Template:
        return await page.listing()

    @get("/{slug:str}/host")
    async def host(self, page: NamedDependency[GrabsPage], slug: FromPath[str]) -> Template:
        """One grab on the host's phone: state, countdown, stock, QR code, the actions."""
        return await page.host(slug)

    @post("/{slug:str}/mode", status_code=200)
    async def set_mode(
        self,
        page: NamedDependency[GrabsPage],
        slug: FromPath[str],
        data: URLEncodedBody[ModeForm],
    ) -> Template:
        """Open now, close now, or follow the schedule again; answered with the host's page."""
        if data.mode not in ("open", "closed", "schedule"):
            return await page.host(slug, _("Unknown action."), status=400)
        await _set_mode(page.db, page.grabs, slug, data.mode)
        return await page.host(slug)

    @get("/new", guards=[MARKETERS])
    async def new(self, page: NamedDependency[GrabsPage]) -> Template:
        return page.form(None, GrabForm())

    @post("/new", status_code=200, guards=[MARKETERS])
    async def create(
        self, page: NamedDependency[GrabsPage], data: URLEncodedBody[GrabForm]
    ) -> Template | Response[Any]:
        async with catch_refusal() as refused:
            body = parse_form(data, with_slug=True)
            assert isinstance(body, GrabCreate)
            await page.grabs.create(page.db, body, by=page.staff.username)
        if refused.error is not None:
            return page.form(None, data, refused.error)
        return see(CONSOLE)

    @get("/{slug:str}/edit", guards=[MARKETERS])
    async def edit(self, page: NamedDependency[GrabsPage], slug: FromPath[str]) -> Template:
        info = await page.grabs.edit_values(page.db, slug)
        form = GrabForm(
            **form_values(info),
            offer=info.offer,
            stock=str(info.initial_stock),
            per_phone_limit=str(info.per_phone_limit),
            voucher_prefix=info.voucher_prefix,
            voucher_valid_days=str(info.voucher_valid_days),
            voucher_where=info.voucher_where,
        )
        return page.form(info.slug, form)

    @post("/{slug:str}/edit", status_code=200, guards=[MARKETERS])
    async def update(
        self,
        page: NamedDependency[GrabsPage],
        slug: FromPath[str],
        data: URLEncodedBody[GrabForm],
    ) -> Template | Response[Any]:
        async with catch_refusal() as refused:
            body = parse_form(data, with_slug=False)
            info = await page.grabs.update(page.db, slug, body)
        if refused.error is not None:
            return page.form(slug, data, refused.error)
        _announce_when_durable(page.db, page.grabs, info.id)
        return see(CONSOLE)


STAFF_ROUTES: list[ControllerRouterHandler] = [api_create, api_open, api_close, GrabConsole]
