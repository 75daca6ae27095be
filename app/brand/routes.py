"""The brand: the admin's page (/staff/admin/brand), and what visitor pages load of it — the
stylesheet with its colours (/brand.css) and the logo (/brand/logo.png)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, MultipartBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.brand import service
from app.brand.book import BrandBook
from app.brand.logo import MAX_LOGO_BYTES, InvalidLogo, prepare_logo
from app.brand.schemas import Brand, BrandForm
from app.core.errors import NotFound
from app.core.forms import catch_refusal
from app.core.i18n import N_
from app.core.state import part
from app.db.uow import after_commit
from app.settings import Settings
from app.staff.auth import requires_role
from app.staff.schemas import Staff

# Room for the largest logo and the other fields; a larger upload gets our own message rather
# than the framework's (the file is read only up to one byte past the limit).
BODY_LIMIT = 2 * MAX_LOGO_BYTES + 65_536
YEAR = "public, max-age=31536000, immutable"


def _cache_control(brand: Brand, asked: str) -> str:
    # Only the current version's URL may be kept for long: an old ?v= must not pin old colours.
    return YEAR if asked == str(brand.version) else "no-cache"


@get("/brand.css", include_in_schema=False)
async def brand_css(request: Request[Any, Any, Any], v: FromQuery[str] = "") -> Response[str]:
    brand = part(request, BrandBook).current()
    return Response(
        service.stylesheet(brand),
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": _cache_control(brand, v)},
    )


@get("/brand/logo.png", include_in_schema=False)
async def brand_logo(request: Request[Any, Any, Any], v: FromQuery[str] = "") -> Response[bytes]:
    brand = part(request, BrandBook).current()
    if not brand.logo:
        raise NotFound()
    return Response(
        brand.logo, media_type="image/png", headers={"Cache-Control": _cache_control(brand, v)}
    )


class BrandController(Controller):
    path = "/staff/admin/brand"
    guards = [requires_role("admin")]  # noqa: RUF012

    @staticmethod
    def _page(
        request: Request[Any, Any, Any],
        staff: Staff,
        brand: Brand,
        *,
        status: int = 200,
        error: str | None = None,
        fields: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        saved: bool = False,
    ) -> Template:
        settings = part(request, Settings)
        context = {
            "staff": staff,
            "brand": brand,
            "form": form
            or {"name": brand.name, "color": brand.color, "contact_phone": brand.contact_phone},
            "error": error,
            "fields": fields or {},
            "saved": saved,
            "max_logo_kb": MAX_LOGO_BYTES // 1024,
            # The privacy notice names a contact only when there is one.
            "no_privacy_contact": not settings.privacy_contact.strip() and not brand.contact_phone,
        }
        return Template("staff/brand.html", context=context, status_code=status)

    @get("/")
    async def page(
        self, request: Request[Any, Any, Any], staff: NamedDependency[Staff]
    ) -> Template:
        return self._page(request, staff, part(request, BrandBook).current())

    @post("/", status_code=200, request_max_body_size=BODY_LIMIT)
    async def save(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
        ip: NamedDependency[str],
        data: MultipartBody[BrandForm],
    ) -> Template:
        book = part(request, BrandBook)
        async with catch_refusal(db_session) as refused:
            logo = await _uploaded_logo(data)
            brand = await service.save(
                db_session,
                staff,
                name=data.name,
                color=data.color,
                contact_phone=data.contact_phone,
                logo=logo,
                remove_logo=data.remove_logo == "on",
                ip=ip,
            )
        if refused:
            return self._page(
                request,
                staff,
                book.current(),
                status=refused.status,
                error=refused.message,
                fields=refused.fields,
                form={"name": data.name, "color": data.color, "contact_phone": data.contact_phone},
            )
        # This process shows the new brand once it is committed; the others within seconds.
        after_commit(db_session, lambda: book.put(brand))
        return self._page(request, staff, brand, saved=True)


async def _uploaded_logo(data: BrandForm) -> bytes | None:
    """The new logo, prepared for storing; None when no file was chosen."""
    if data.logo is None:
        return None
    raw = await data.logo.read(MAX_LOGO_BYTES + 1)
    await data.logo.close()
    if not raw:
        return None
    if len(raw) > MAX_LOGO_BYTES:
        raise InvalidLogo(N_("The logo is larger than 512 KB."), fields={"logo": "too_large"})
    # Decoding and scaling an image is CPU work: off the event loop.
    return await asyncio.to_thread(prepare_logo, raw)


ROUTES: list[ControllerRouterHandler] = [brand_css, brand_logo, BrandController]
