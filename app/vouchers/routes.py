"""The staff redemption page (phone-first: type or scan, look up, confirm) and the till API."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import JSONBody, URLEncodedBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.api import TOKEN_REQUIRED, problems
from app.core.errors import DomainError
from app.core.forms import catch_refusal
from app.core.handlers import domain_error_handler
from app.core.pages import page_or_partial
from app.core.params import PathId
from app.core.ratelimit import RateLimiter
from app.events.service import Tracker
from app.grabs.held import HINT_COOKIE, hint_cookie
from app.settings import Settings
from app.staff.auth import requires_role
from app.staff.pages import StaffPage
from app.staff.schemas import Staff
from app.visitors.web import public_id_from
from app.vouchers import mine, service
from app.vouchers.schemas import (
    STATUS_LABELS,
    RedeemResult,
    VoucherForm,
    VoucherRedeem,
    VoucherView,
)

STAFF_ROLES = ("sales", "host", "marketer")  # and admin, who holds every role
NO_STORE = {"Cache-Control": "no-store"}


def _store_cookie_name(staff: Staff) -> str:
    # Per staff member: a shared counter phone remembers each person's own store.
    return f"lk_store_{staff.id}"


def remembered_store(request: Request[Any, Any, Any], staff: Staff) -> str:
    raw = request.cookies.get(_store_cookie_name(staff), "")
    try:
        return service.clean_store(unquote(raw))
    except DomainError:
        return ""


def typed_store(request: Request[Any, Any, Any], staff: Staff, raw: str) -> str:
    """The store the form named, if it is a valid one; else the remembered one."""
    try:
        return service.clean_store(raw)
    except DomainError:
        return remembered_store(request, staff)


def _store_cookie(staff: Staff, store: str) -> Cookie:
    return Cookie(
        key=_store_cookie_name(staff),
        value=quote(store, safe=""),
        max_age=365 * 86400,
        path="/staff/vouchers",
        httponly=True,
        samesite="lax",
    )


@dataclass(frozen=True, slots=True)
class Desk(StaffPage):
    """The redemption page as one staff member works it: every handler shows it again, with a
    voucher found, redeemed or undone, or with why that was refused."""

    settings: Settings
    limiter: RateLimiter
    tracker: Tracker
    ip: str

    @property
    def undo_minutes(self) -> int:
        return self.settings.voucher_undo_minutes

    async def panel(
        self, *, store: str, status: int = 200, remember: bool = False, **extra: Any
    ) -> Template:
        context: dict[str, Any] = {
            "staff": self.staff,
            "store": store,
            "voucher": None,
            "outcome": None,
            "error": None,
            "typed": "",
            "recent": await service.recent(self.db, self.staff, store, self.undo_minutes),
            "undo_minutes": self.undo_minutes,
            "status_labels": STATUS_LABELS,
            **extra,
        }
        return page_or_partial(
            self.request,
            "staff/vouchers.html",
            context,
            status_code=status,
            headers=NO_STORE,
            cookies=[_store_cookie(self.staff, store)] if remember and store else None,
        )

    async def attempt(
        self,
        attempt: Awaitable[VoucherView],
        *,
        outcome: str,
        form: VoucherForm | None = None,
        store: str = "",
        remember_refused: bool = False,
    ) -> Template:
        """Run a lookup, redemption or undo: the panel shows its voucher, or why it was refused.
        A code typed into the ``form`` is shown at the store it names (remembered), and shown
        again when refused; an undo stays at the ``store`` it was made at."""
        typed = ""
        if form is not None:
            store, typed = typed_store(self.request, self.staff, form.store), form.code[:64]
        async with catch_refusal(self.db) as refused:
            voucher = await attempt
        if refused:
            return await self.panel(
                store=store,
                status=refused.status,
                remember=remember_refused,
                error=refused.message,
                typed=typed,
            )
        return await self.panel(
            store=store, remember=form is not None, voucher=voucher, outcome=outcome
        )


class VoucherController(Controller):
    path = "/staff/vouchers"
    guards = [requires_role(*STAFF_ROLES)]  # noqa: RUF012
    dependencies = {"desk": Desk.dependency()}  # noqa: RUF012

    @get("/")
    async def page(self, desk: NamedDependency[Desk]) -> Template:
        """The redemption page: store, code (typed or scanned), today's redemptions here."""
        return await desk.panel(store=remembered_store(desk.request, desk.staff))

    @post("/lookup", status_code=200)
    async def lookup(
        self, desk: NamedDependency[Desk], data: URLEncodedBody[VoucherForm]
    ) -> Template:
        """Show the voucher behind a code before redeeming it; refusals say why."""
        found = service.lookup(desk.db, desk.limiter, desk.staff, data, desk.ip, desk.undo_minutes)
        return await desk.attempt(found, outcome="found", form=data, remember_refused=True)

    @post("/redeem", status_code=200)
    async def redeem(
        self, desk: NamedDependency[Desk], data: URLEncodedBody[VoucherForm]
    ) -> Template:
        """Redeem the voucher shown: once, atomically, audited."""
        redeemed = service.redeem(
            desk.db, desk.limiter, desk.tracker, desk.staff, data, desk.ip, desk.undo_minutes
        )
        return await desk.attempt(redeemed, outcome="redeemed", form=data)

    @post("/{claim_id:int}/undo", status_code=200)
    async def undo(self, desk: NamedDependency[Desk], claim_id: PathId) -> Template:
        """Undo a redemption: the staff member who made it, or an admin, within the window."""
        store = remembered_store(desk.request, desk.staff)
        undone = service.undo(
            desk.db, desk.tracker, desk.staff, claim_id, desk.ip, desk.undo_minutes, store
        )
        return await desk.attempt(undone, outcome="undone", store=store)


@post(
    "/api/v1/vouchers/redeem",
    summary="Redeem a voucher",
    guards=[requires_role(*STAFF_ROLES)],
    status_code=200,
    tags=["vouchers"],
    security=TOKEN_REQUIRED,
    responses=problems(
        401,
        403,
        413,
        415,
        429,
        why={
            400: "Not a voucher code, no store, or not a valid body (`code`: malformed, …).",
            404: "No voucher with that code (`code`: unknown).",
            409: "Already redeemed, expired or void (`code` says which).",
        },
    ),
)
async def api_redeem(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    staff: NamedDependency[Staff],
    settings: NamedDependency[Settings],
    limiter: NamedDependency[RateLimiter],
    tracker: NamedDependency[Tracker],
    ip: NamedDependency[str],
    data: JSONBody[VoucherRedeem],
) -> Response[RedeemResult]:
    """A store's till redeems a code (any staff token); refusals are problem documents with a
    ``code`` (unknown, already_redeemed, expired, void, malformed, …)."""
    form = VoucherForm(code=data.code, store=data.store)
    async with catch_refusal() as refused:
        voucher = await service.redeem(
            db_session, limiter, tracker, staff, form, ip, settings.voucher_undo_minutes
        )
    if refused.error is not None:
        # Answered, not raised: a refusal's audit row is kept only with an answer (keep()).
        return domain_error_handler(request, refused.error)
    result = RedeemResult(
        code=voucher.code,
        status=voucher.status,
        title=voucher.title,
        offer=voucher.offer,
        store=voucher.redeemed_store,
        redeemed_at=voucher.redeemed_at,
        undo_minutes=settings.voucher_undo_minutes,
    )
    return Response(result, status_code=200)


@get("/me/vouchers")
async def my_vouchers(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
) -> Template:
    """我的券: the visitor's vouchers, newest first, each in its state (usable ones with their
    QR code). Keeps the header's link hint in step with what the page found."""
    vouchers = await mine.held_by(db_session, public_id_from(settings, request.scope))
    hinted = bool(request.cookies.get(HINT_COOKIE))
    return Template(
        "vouchers/mine.html",
        context={"vouchers": vouchers},
        headers=NO_STORE,
        cookies=[hint_cookie(settings, bool(vouchers))] if hinted != bool(vouchers) else None,
    )


ROUTES: list[ControllerRouterHandler] = [VoucherController, api_redeem, my_vouchers]
