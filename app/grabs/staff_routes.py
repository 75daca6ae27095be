"""Grabs for staff: the admin JSON API (create, open now, close now) and the host console
with the marketer's create/edit form."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, URLEncodedBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.api import TOKEN_REQUIRED, problems
from app.core.clock import china_time
from app.core.errors import DomainError
from app.core.forms import catch_refusal
from app.core.i18n import gettext as _
from app.core.schedule import form_time
from app.db.uow import after_commit, after_rollback
from app.grabs.definition import parse_form
from app.grabs.host import host_context
from app.grabs.schemas import STATE_LABELS, GrabCreate, GrabForm, GrabSlug, GrabStatus
from app.grabs.service import Grabs
from app.staff.auth import requires_role
from app.staff.schemas import Staff

HOSTS = requires_role("host", "marketer")


# The admin JSON API.


@post(
    "/api/v1/admin/grabs",
    status_code=201,
    summary="Create a grab",
    guards=[requires_role("marketer")],
    tags=["grabs"],
    security=TOKEN_REQUIRED,
    responses=problems(400, 401, 403, 413, 415, why={409: "The slug is taken."}),
)
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
    "status_code": 200,
    "guards": [HOSTS],
    "tags": ["grabs"],
    "security": TOKEN_REQUIRED,
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


class GrabConsole(Controller):
    path = "/staff/grabs"
    guards = [HOSTS]  # noqa: RUF012

    async def _list(
        self, request: HTMXRequest, db: AsyncSession, grabs: Grabs, staff: Staff
    ) -> Template:
        rows = await grabs.console(db)
        context = {
            "staff": staff,
            "rows": [
                {
                    "grab": info,
                    "status": status,
                    "starts": china_time(info.starts_at),
                    "ends": china_time(info.ends_at),
                }
                for info, status in rows
            ],
            "state_labels": STATE_LABELS,
        }
        partial = request.htmx and request.htmx.target == "grab-list"
        name = "grabs/_console_list.html" if partial else "grabs/console.html"
        return Template(name, context=context)

    @get("/")
    async def index(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        grabs: NamedDependency[Grabs],
        staff: NamedDependency[Staff],
    ) -> Template:
        return await self._list(request, db_session, grabs, staff)

    async def _host(
        self,
        request: HTMXRequest,
        db: AsyncSession,
        grabs: Grabs,
        staff: Staff,
        slug: str,
        error: str | None = None,
        status: int = 200,
    ) -> Template:
        """The host's page of one grab, or its part (#grab-host) for htmx."""
        info = await grabs.info(slug, db)
        context = {
            "staff": staff,
            "error": error,
            **await host_context(db, str(request.base_url), info, await grabs.status(slug, db)),
        }
        partial = request.htmx and request.htmx.target == "grab-host"
        name = "grabs/_host.html" if partial else "grabs/host.html"
        return Template(name, context=context, status_code=status)

    @get("/{slug:str}/host")
    async def host(
        self,
        request: HTMXRequest,
        slug: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        grabs: NamedDependency[Grabs],
        staff: NamedDependency[Staff],
    ) -> Template:
        """One grab on the host's phone: state, countdown, stock, QR code, the actions."""
        return await self._host(request, db_session, grabs, staff, slug)

    @post("/{slug:str}/mode", status_code=200)
    async def set_mode(
        self,
        request: HTMXRequest,
        slug: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        grabs: NamedDependency[Grabs],
        staff: NamedDependency[Staff],
        data: URLEncodedBody[ModeForm],
    ) -> Template:
        """Open now, close now, or follow the schedule again; answered with the host's page."""
        if data.mode not in ("open", "closed", "schedule"):
            return await self._host(
                request, db_session, grabs, staff, slug, _("Unknown action."), status=400
            )
        await _set_mode(db_session, grabs, slug, data.mode)
        return await self._host(request, db_session, grabs, staff, slug)

    @get("/new", guards=[requires_role("marketer")])
    async def new(self, staff: NamedDependency[Staff]) -> Template:
        return _form_page(staff, None, GrabForm(), None)

    @post("/new", status_code=200, guards=[requires_role("marketer")])
    async def create(
        self,
        db_session: NamedDependency[AsyncSession],
        grabs: NamedDependency[Grabs],
        staff: NamedDependency[Staff],
        data: URLEncodedBody[GrabForm],
    ) -> Template | Response[Any]:
        async with catch_refusal() as refused:
            body = parse_form(data, with_slug=True)
            assert isinstance(body, GrabCreate)
            await grabs.create(db_session, body, by=staff.username)
        if refused.error is not None:
            return _form_page(staff, None, data, refused.error)
        return _see_console()

    @get("/{slug:str}/edit", guards=[requires_role("marketer")])
    async def edit(
        self,
        slug: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        grabs: NamedDependency[Grabs],
        staff: NamedDependency[Staff],
    ) -> Template:
        info = await grabs.edit_values(db_session, slug)
        form = GrabForm(
            slug=info.slug,
            title=info.title,
            offer=info.offer,
            image_url=info.image_url,
            stock=str(info.initial_stock),
            per_phone_limit=str(info.per_phone_limit),
            starts_at=form_time(info.starts_at),
            ends_at=form_time(info.ends_at),
            voucher_prefix=info.voucher_prefix,
            voucher_valid_days=str(info.voucher_valid_days),
            voucher_where=info.voucher_where,
        )
        return _form_page(staff, info.slug, form, None)

    @post("/{slug:str}/edit", status_code=200, guards=[requires_role("marketer")])
    async def update(
        self,
        slug: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        grabs: NamedDependency[Grabs],
        staff: NamedDependency[Staff],
        data: URLEncodedBody[GrabForm],
    ) -> Template | Response[Any]:
        async with catch_refusal() as refused:
            body = parse_form(data, with_slug=False)
            info = await grabs.update(db_session, slug, body)
        if refused.error is not None:
            return _form_page(staff, slug, data, refused.error)
        _announce_when_durable(db_session, grabs, info.id)
        return _see_console()


def _see_console() -> Response[Any]:
    return Response(b"", status_code=303, headers={"Location": "/staff/grabs/"})


def _form_page(staff: Staff, slug: str | None, form: GrabForm, exc: DomainError | None) -> Template:
    return Template(
        "grabs/form.html",
        context={
            "staff": staff,
            "slug": slug,
            "form": form,
            "error": exc.translated if exc else None,
            "fields": sorted(exc.fields) if exc else [],
        },
        status_code=exc.status if exc else 200,
    )


STAFF_ROUTES: list[ControllerRouterHandler] = [api_create, api_open, api_close, GrabConsole]
