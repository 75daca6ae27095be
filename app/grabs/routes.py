"""Grabs over HTTP: the visitor's grab button (page part and JSON), the live stock stream,
the admin JSON API and the host console."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
import segno
from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, URLEncodedBody
from litestar.response import Template
from litestar.response.sse import ServerSentEventMessage
from litestar.types import ControllerRouterHandler
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.api import PROBLEM_JSON, TOKEN_REQUIRED, answer, path_param, problems
from app.core.clock import china_time
from app.core.errors import DomainError, RateLimited
from app.core.forms import catch_refusal
from app.core.handlers import STATUS_TITLES
from app.core.i18n import gettext as _
from app.core.state import part
from app.core.streams import live_stream
from app.core.web import client_ip
from app.db.uow import after_commit, after_rollback
from app.events.schemas import GateShown, GrabClicked, GrabRefused, GrabWon
from app.events.service import Tracker
from app.gate.service import GateRequired
from app.gate.views import gate_context
from app.grabs.schemas import (
    STATE_LABELS,
    ClaimAnswer,
    ClaimForm,
    ClaimRefusal,
    GrabCreate,
    GrabForm,
    GrabStatus,
    Voucher,
)
from app.grabs.service import Grabs, parse_form
from app.grabs.store import Claimant, GrabInfo, claim_context
from app.settings import Settings
from app.staff.auth import requires_role
from app.staff.schemas import Staff
from app.visitors.web import public_id_from

STREAM_SECONDS = 300  # an EventSource reconnects by itself; no stream lives forever
HEARTBEAT_SECONDS = 15
HOSTS = requires_role("host", "marketer")
GrabSlug = Annotated[str, path_param("A grab's slug.", "grab-demo")]


# A rush is thousands of taps a second, most of them the same visitor again: the funnel counts
# distinct visitors per step, so a repeated click or refusal (same visitor, grab and reason)
# is recorded once per REPEAT_WINDOW per process. Every win is recorded.
REPEAT_WINDOW = 60.0
_REPEAT_MAX = 100_000


def _first_in_window(
    recent: dict[tuple[int | None, int, str], float], key: tuple[int | None, int, str]
) -> bool:
    now = time.monotonic()
    if recent.get(key, 0.0) > now:
        return False
    if len(recent) >= _REPEAT_MAX:
        recent.clear()
    recent[key] = now + REPEAT_WINDOW
    return True


def _track(
    grabs: Grabs,
    tracker: Tracker,
    grab: GrabInfo,
    who: Claimant,
    result: str,
    won_n: int | None,
    replayed: bool,
) -> None:
    """``result`` is the answer's (or "rate_limited"); ``won_n`` the unit won, if any."""
    ctx = claim_context(grab, who)
    recent = grabs.recent_taps
    if (won_n is not None and not replayed) or _first_in_window(
        recent, (who.visitor_id, grab.id, "clicked")
    ):
        tracker.track(ctx, GrabClicked())
    if replayed:  # the first answer was counted already
        return
    if won_n is not None:
        # The claim store wrote the win with the claim; the listeners hear of it here.
        tracker.announce(ctx, GrabWon(n=won_n), dt.datetime.now(dt.UTC))
    elif _first_in_window(recent, (who.visitor_id, grab.id, result)):
        tracker.track(ctx, GrabRefused(reason=result))


def _track_answer(
    grabs: Grabs,
    tracker: Tracker,
    grab: GrabInfo,
    who: Claimant,
    answer: ClaimAnswer,
    replayed: bool,
) -> None:
    won = answer.voucher.n if answer.result == "won" and answer.voucher is not None else None
    _track(grabs, tracker, grab, who, answer.result, won, replayed)


def qr_data_uri(code: str) -> str:
    """The voucher code as a QR image (a data: URI, which the CSP allows for images)."""
    return str(segno.make_qr(code, error="m").svg_data_uri(scale=6, border=2))


def voucher_view(v: Voucher) -> dict[str, Any]:
    return {
        "code": v.code,
        "display": v.display,
        "n": v.n,
        "expires": china_time(v.expires_at),
        "where": v.where,
        "qr": qr_data_uri(v.code),
    }


async def page_context(
    grabs: Grabs,
    settings: Settings,
    grab: GrabInfo,
    who: Claimant | None,
    *,
    answer: ClaimAnswer | None = None,
    error: str | None = None,
    db: AsyncSession | None = None,
) -> dict[str, Any]:
    """What tools/grab.html and its panel need (through the request's session ``db``, when
    the request has one)."""
    status = await grabs.status(grab.slug, db)
    vouchers = await grabs.vouchers_of(grab, who.phone_hash, db) if who else []
    fresh = answer.voucher if answer is not None else None
    if fresh is not None and all(v.code != fresh.code for v in vouchers):
        vouchers.append(fresh)
    return {
        "grab": grab,
        "status": status,
        "authorised": who is not None,
        # The panel carries the gate (and the page counts it as shown) for a visitor without
        # a phone while there is something left to grab.
        "show_gate": who is None and status.state != "sold_out",
        "answer": answer,
        "error": error,
        "vouchers": [voucher_view(v) for v in vouchers],
        "can_claim_more": len(vouchers) < grab.per_phone_limit,
        "idempotency_key": secrets.token_urlsafe(16),
        "starts_at_text": china_time(grab.starts_at),
        "ends_at_text": china_time(grab.ends_at),
        **gate_context(settings, next=f"/t/{grab.slug}"),
    }


# Visitors.


@post("/t/{slug:str}/grab", status_code=200)
async def grab_form(
    request: HTMXRequest,
    slug: FromPath[str],
    grabs: NamedDependency[Grabs],
    settings: NamedDependency[Settings],
    tracker: NamedDependency[Tracker],
    ip: NamedDependency[str],
    data: URLEncodedBody[ClaimForm],
) -> Template:
    """The page's grab button: the panel again, with the outcome (or the gate)."""
    grab = await grabs.info(slug)
    who = await grabs.claimant(public_id_from(settings, request.scope))
    name = "tools/_grab_panel.html" if request.htmx else "tools/grab.html"
    if who is None:
        ctx = await page_context(grabs, settings, grab, None)
        if ctx["show_gate"]:
            tracker.track(claim_context(grab, None), GateShown())
        return Template(name, context=ctx, status_code=401)
    try:
        claimed = await grabs.claim(slug, who, data.idempotency_key or None, ip)
    except RateLimited as exc:
        _track(grabs, tracker, grab, who, "rate_limited", None, replayed=False)
        page = await page_context(grabs, settings, grab, who, error=exc.translated)
        return Template(name, context=page, status_code=429)
    _track_answer(grabs, tracker, grab, who, claimed.answer, claimed.replayed)
    page = await page_context(grabs, settings, grab, who, answer=claimed.answer)
    return Template(name, context=page)


@get(
    "/api/v1/grabs/{slug:str}",
    summary="A grab's state and stock",
    tags=["grabs"],
    responses=problems(400, why={404: "No published grab by that slug."}),
)
async def grab_status(slug: GrabSlug, grabs: NamedDependency[Grabs]) -> Response[GrabStatus]:
    """State and stock left (the live page's polling fallback)."""
    return Response(await grabs.status(slug), headers={"Cache-Control": "no-store"})


def _refusal(
    status: int, result: str, detail: str, retry_after: int | None = None
) -> Response[Any]:
    body = ClaimRefusal(
        type=f"about:blank#{result}",
        title=_(STATUS_TITLES[status]),
        status=status,
        code=result,
        detail=detail,
        result=result,  # type: ignore[arg-type]
        retry_after=retry_after,
    )
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


@post(
    "/api/v1/grabs/{slug:str}/claim",
    status_code=200,
    summary="Claim a unit",
    tags=["grabs"],
    responses={
        **problems(
            415,
            why={
                400: "The Idempotency-Key header is not 1 to 64 printable characters.",
                404: "No published grab by that slug.",
            },
        ),
        401: answer(
            ClaimRefusal,
            'The visitor (cookie) has not verified a phone: `"result": "gate_required"`.',
            PROBLEM_JSON,
        ),
        429: answer(
            ClaimRefusal,
            'Too many taps: `"result": "rate_limited"`; wait `Retry-After` seconds.',
            PROBLEM_JSON,
        ),
    },
)
async def grab_claim(
    request: Request[Any, Any, Any],
    slug: GrabSlug,
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key",
            description="Makes a retried tap one claim: the same key from the same phone gets "
            "the same answer.",
            schema_extra={"pattern": "^[\\x21-\\x7e]{1,64}$"},  # IDEMPOTENCY_KEY
        ),
    ] = None,
) -> Response[ClaimAnswer]:
    """Claim one unit for the visitor (cookie) once their phone is verified: ``result`` is won
    (with the voucher), sold_out, already_claimed or not_open."""
    # The hottest endpoint: its parts come straight from the app state, because resolving
    # several dependencies costs a task group per request.
    grabs, settings, tracker = part(request, Grabs), part(request, Settings), part(request, Tracker)
    ip = client_ip(request.scope, settings.trust_proxy)
    grab = await grabs.info(slug)
    who = await grabs.claimant(public_id_from(settings, request.scope))
    if who is None:
        return _refusal(401, "gate_required", _(GateRequired.default_message))
    try:
        claimed = await grabs.claim(slug, who, idempotency_key, ip)
    except RateLimited as exc:
        _track(grabs, tracker, grab, who, "rate_limited", None, replayed=False)
        return _refusal(429, "rate_limited", exc.translated, exc.retry_after)
    _track_answer(grabs, tracker, grab, who, claimed.answer, claimed.replayed)
    return Response(claimed.answer)


@get(
    "/api/v1/grabs/{slug:str}/events",
    summary="Live state (server-sent events)",
    tags=["grabs"],
    responses={
        200: answer(
            str,
            "Server-sent events: `status` (the grab's status JSON) whenever it changes, a "
            "comment every 15 s; the stream ends after 5 minutes (EventSource reconnects). "
            "Over the stream caps the answer is one `poll` event, "
            '`{"poll_seconds", "retry_seconds"}`, and the end: poll `GET '
            "/api/v1/grabs/{slug}` that often; the browser retries the stream by itself.",
            "text/event-stream",
        ),
        **problems(400, why={404: "No published grab by that slug."}),
    },
)
async def grab_events(
    request: Request[Any, Any, Any], slug: GrabSlug, grabs: NamedDependency[Grabs]
) -> Response[Any]:
    """The grab's live status as a stream of server-sent events (app.core.streams caps them)."""
    grab = await grabs.info(slug)

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        last = b""
        quiet_since = time.monotonic()
        until = time.monotonic() + STREAM_SECONDS
        while time.monotonic() < until:
            status = await grabs.status(slug)
            payload = msgspec.json.encode(status)
            if payload != last:
                last, quiet_since = payload, time.monotonic()
                yield ServerSentEventMessage(data=payload.decode(), event="status")
            elif time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                quiet_since = time.monotonic()
                yield ServerSentEventMessage(comment="keep-alive")
            timeout = 5.0
            if status.starts_in is not None:
                timeout = max(0.2, min(timeout, status.starts_in))
            await grabs.live.wait(grab.id, timeout)

    return live_stream(request, stream)


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
    after_rollback(db, lambda: grabs.live.forget_here(grab_id))


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
        self, request: HTMXRequest, db: AsyncSession, grabs: Grabs, staff: Staff, **extra: Any
    ) -> Template:
        status = extra.pop("status", 200)
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
            "error": None,
            **extra,
        }
        partial = request.htmx and request.htmx.target == "grab-list"
        name = "grabs/_console_list.html" if partial else "grabs/console.html"
        return Template(name, context=context, status_code=status)

    @get("/")
    async def index(
        self,
        request: HTMXRequest,
        db_session: NamedDependency[AsyncSession],
        grabs: NamedDependency[Grabs],
        staff: NamedDependency[Staff],
    ) -> Template:
        return await self._list(request, db_session, grabs, staff)

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
        """Open now, close now, or follow the schedule again."""
        if data.mode not in ("open", "closed", "schedule"):
            return await self._list(
                request, db_session, grabs, staff, error=_("Unknown action."), status=400
            )
        await _set_mode(db_session, grabs, slug, data.mode)
        return await self._list(request, db_session, grabs, staff)

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
            starts_at=_local(info.starts_at),
            ends_at=_local(info.ends_at),
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
            info = await grabs.update(db_session, slug, body)  # type: ignore[arg-type]
        if refused.error is not None:
            return _form_page(staff, slug, data, refused.error)
        _announce_when_durable(db_session, grabs, info.id)
        return _see_console()


def _local(at: Any) -> str:
    return china_time(at).replace(" ", "T") if at else ""


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


ROUTES: list[ControllerRouterHandler] = [
    Router(
        path="/",
        route_handlers=[
            grab_form,
            grab_status,
            grab_claim,
            grab_events,
            api_create,
            api_open,
            api_close,
            GrabConsole,
        ],
    )
]


async def grab_page(request: Request[Any, Any, Any], slug: str, db: AsyncSession) -> Template:
    """``/t/{slug}`` for a tool of kind grab (the site's tool page hands over here)."""
    grabs, settings = part(request, Grabs), part(request, Settings)
    grab = await grabs.info(slug, db)
    who = await grabs.claimant(public_id_from(settings, request.scope), db)
    context = await page_context(grabs, settings, grab, who, db=db)
    return Template("tools/grab.html", context=context)
