"""Staff pages for accounts and tracked links: lists, forms, QR codes, CSV import."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, MultipartBody, URLEncodedBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from msgspec.structs import asdict
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import DomainError
from app.core.forms import Refusal, catch_refusal
from app.core.i18n import N_
from app.core.pages import page_or_partial
from app.core.params import OptionalQueryId, PathId
from app.core.state import part
from app.links import csv_import, service
from app.links.schemas import (
    ACCOUNT_CAPS,
    CHANNEL_LABELS,
    KIND_LABELS,
    PLATFORM_LABELS,
    AccountCreate,
    LinkActive,
    LinkCreate,
    LinkFigures,
    LinkFilter,
    LinkImport,
)
from app.staff.auth import requires_role
from app.staff.pages import StaffPage

# Room for a 1 MB file and a 1 MB text box; anything between the two limits gets our own
# message rather than the framework's.
IMPORT_BODY_LIMIT = 2 * csv_import.MAX_IMPORT_BYTES + 65_536
LABELS = {"kinds": KIND_LABELS, "channels": CHANNEL_LABELS, "platforms": PLATFORM_LABELS}


def _filter(
    kind: FromQuery[str] = "", channel: FromQuery[str] = "", account: OptionalQueryId = None
) -> LinkFilter:
    """The list's filter from the query (a dependency of every page that shows the list):
    only known values filter; anything else means no filter."""
    return LinkFilter(
        kind=kind if kind in KIND_LABELS else "",
        channel=channel if channel in CHANNEL_LABELS else "",
        account_id=account if account and account > 0 else None,
    )


def _base_url(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


class ImportTooLarge(
    DomainError,
    status=413,
    code="too_large",
    message=N_("The file is larger than 1 MB: split it and import the parts."),
):
    """The uploaded or pasted CSV is larger than MAX_IMPORT_BYTES."""


@dataclass(frozen=True, slots=True)
class LinksPage(StaffPage):
    """The accounts and links, the list filtered (``where``)."""

    where: LinkFilter

    async def render(self, *, status: int = 200, **extra: Any) -> Template:
        db = self.db
        links = await service.list_links(db, self.where)
        # Every link of the page counted in one query (app/analytics/links.py).
        counter = part(self.request, service.LinkCounter)  # type: ignore[type-abstract]
        context = {
            "staff": self.staff,
            "where": self.where,
            "accounts": await service.list_accounts(db),
            "counts": await service.account_counts(db),
            "caps": ACCOUNT_CAPS,
            "links": links,
            "figures": await counter.figures(db, [link.id for link in links]),
            "no_figures": LinkFigures(),
            "limit": service.LIST_LIMIT,
            "owners": await service.owners(db),
            "tools": await service.tool_titles(db),
            "base_url": _base_url(self.request),
            "account_error": None,
            "link_error": None,
            "account_form": {},
            "link_form": {},
            "created": None,
            **LABELS,
            **extra,
        }
        return page_or_partial(self.request, "staff/links.html", context, status_code=status)

    async def refused(self, refused: Refusal, form: str, data: msgspec.Struct) -> Template:
        """The page again with the ``form`` ("account" or "link") as typed and the rule's
        message above it."""
        shown = {f"{form}_error": refused.message, f"{form}_form": asdict(data)}
        return await self.render(status=refused.status, **shown)


@dataclass(frozen=True, slots=True)
class ImportPage(StaffPage):
    """The CSV import: the columns it takes, and what the last file did or why it was refused."""

    async def render(self, *, status: int = 200, **extra: Any) -> Template:
        context = {
            "staff": self.staff,
            "columns": csv_import.COLUMNS,
            "caps": ACCOUNT_CAPS,
            "counts": await service.account_counts(self.db),
            "tools": await service.tool_titles(self.db),
            "max_rows": csv_import.MAX_ROWS,
            "error": None,
            "errors": [],
            "summary": None,
            "text": "",
            **LABELS,
            **extra,
        }
        return Template("staff/links_import.html", context=context, status_code=status)


class LinksController(Controller):
    path = "/staff/links"
    guards = [requires_role("marketer")]  # noqa: RUF012
    dependencies = {  # noqa: RUF012
        "where": Provide(_filter, sync_to_thread=False),
        "page": LinksPage.dependency(),
        "upload": ImportPage.dependency(),
    }

    @get("/")
    async def index(self, page: NamedDependency[LinksPage]) -> Template:
        return await page.render()

    @post("/accounts", status_code=200)
    async def create_account(
        self,
        page: NamedDependency[LinksPage],
        ip: NamedDependency[str],
        data: URLEncodedBody[AccountCreate],
    ) -> Template:
        async with catch_refusal(page.db) as refused:
            await service.create_account(page.db, page.staff, data, ip)
        if refused:
            return await page.refused(refused, "account", data)
        return await page.render()

    @post("/", status_code=200)
    async def create_link(
        self,
        page: NamedDependency[LinksPage],
        ip: NamedDependency[str],
        data: URLEncodedBody[LinkCreate],
    ) -> Template:
        async with catch_refusal(page.db) as refused:
            link = await service.create_link(page.db, page.staff, data, ip)
        if refused:
            return await page.refused(refused, "link", data)
        return await page.render(created=link.code)

    @post("/{link_id:int}/active", status_code=200)
    async def set_active(
        self,
        page: NamedDependency[LinksPage],
        ip: NamedDependency[str],
        link_id: PathId,
        data: URLEncodedBody[LinkActive],
    ) -> Template:
        await service.set_link_active(page.db, page.staff, link_id, data.active, ip)
        return await page.render()

    @get(["/{link_id:int}/qr.svg", "/{link_id:int}/qr.png"])
    async def qr(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        link_id: PathId,
    ) -> Response[bytes]:
        """The link's QR code to download, as SVG (print) or PNG (chat apps)."""
        link = await service.get_link(db_session, link_id)
        url = service.public_url(_base_url(request), link.code)
        if request.url.path.endswith(".svg"):
            return _download(service.qr_svg(url), "image/svg+xml", link.code, "svg")
        return _download(service.qr_png(url), "image/png", link.code, "png")

    @get("/import")
    async def import_page(self, upload: NamedDependency[ImportPage]) -> Template:
        return await upload.render()

    @post("/import", status_code=200, request_max_body_size=IMPORT_BODY_LIMIT)
    async def import_csv(
        self,
        upload: NamedDependency[ImportPage],
        ip: NamedDependency[str],
        data: MultipartBody[LinkImport],
    ) -> Template:
        async with catch_refusal(upload.db) as refused:
            text = await _import_text(data)
            summary = await csv_import.import_csv(upload.db, upload.staff, text, ip)
        if refused:
            rejected = refused.error
            return await upload.render(
                status=refused.status,
                error=refused.message,
                # A rejected file lists its problems row by row.
                errors=rejected.errors if isinstance(rejected, csv_import.ImportRejected) else [],
                text=data.text,
            )
        return await upload.render(summary=summary)


async def _import_text(data: LinkImport) -> str:
    """The CSV text from the upload, or else from the text box; at most 1 MB either way."""
    if data.file is not None:
        raw = await data.file.read(csv_import.MAX_IMPORT_BYTES + 1)
        await data.file.close()
        if len(raw) > csv_import.MAX_IMPORT_BYTES:
            raise ImportTooLarge()
        if raw:
            return csv_import.decode(raw)
    if len(data.text.encode()) > csv_import.MAX_IMPORT_BYTES:
        raise ImportTooLarge()
    return data.text


def _download(body: bytes, media_type: str, code: str, extension: str) -> Response[bytes]:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", code)
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="qr-{safe}.{extension}"',
            "Cache-Control": "private, no-store",
        },
    )


ROUTES: list[ControllerRouterHandler] = [LinksController]
