"""Grabs over HTTP for visitors: the grab button (page part and JSON), the state and its live
stream, the page /t/{slug} of a grab; and the feature's route table (the staff side is
staff_routes.py)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, URLEncodedBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.api import PROBLEM_JSON, answer, problems
from app.core.errors import DomainError, RateLimited
from app.core.i18n import N_
from app.core.i18n import gettext as _
from app.core.refusals import refusal
from app.core.state import part
from app.core.streams import live_status
from app.core.web import client_ip
from app.events.schemas import GateShown
from app.events.service import Tracker
from app.gate.pending import pending_for
from app.gate.service import GateRequired
from app.grabs import waitlist
from app.grabs.schemas import ClaimAnswer, ClaimForm, ClaimRefusal, GrabSlug, GrabStatus
from app.grabs.service import Grabs
from app.grabs.staff_routes import STAFF_ROUTES
from app.grabs.store import GrabInfo, tap_context
from app.grabs.views import page_context, panel, track_answer, track_tap
from app.settings import Settings
from app.tools.api import events_api, status_api
from app.visitors.web import public_id_from

MISSING = "No published grab by that slug."  # why the public API answers 404

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
        return await _gate(grabs, settings, tracker, grab, name)
    try:
        claimed = await grabs.claim(slug, who, data.idempotency_key or None, ip)
    except RateLimited as exc:
        track_tap(tracker, grab, who, "rate_limited", None, replayed=False)
        page = await page_context(grabs, settings, grab, who, error=exc.translated)
        return panel(name, page, settings, 429)
    track_answer(tracker, grab, who, claimed)
    page = await page_context(grabs, settings, grab, who, answer=claimed.answer)
    return panel(name, page, settings)


async def _gate(
    grabs: Grabs,
    settings: Settings,
    tracker: Tracker,
    grab: GrabInfo,
    name: str,
    db: AsyncSession | None = None,
) -> Template:
    """A tap by a visitor without a phone: the panel with the gate, 401."""
    ctx = await page_context(grabs, settings, grab, None, db=db)
    tracker.track(tap_context(grab, None), GateShown())
    return Template(name, context=ctx, status_code=401)


class NotSoldOut(
    DomainError,
    status=409,
    code="not_sold_out",
    message=N_("There are still some left: grab one now."),
):
    """A waiting-list tap on a grab that is not sold out (shown in its panel)."""


@post("/t/{slug:str}/waitlist", status_code=200)
async def waitlist_form(
    request: HTMXRequest,
    slug: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    grabs: NamedDependency[Grabs],
    settings: NamedDependency[Settings],
    tracker: NamedDependency[Tracker],
) -> Template:
    """A sold-out grab's waiting list: the visitor asks to hear of the next round. Once per
    phone, however often they tap; recorded on the lead's timeline (app/grabs/waitlist.py)."""
    grab = await grabs.info(slug, db_session)
    who = await grabs.claimant(public_id_from(settings, request.scope), db_session)
    name = "tools/_grab_panel.html" if request.htmx else "tools/grab.html"
    if who is None:
        return await _gate(grabs, settings, tracker, grab, name, db_session)
    if (await grabs.status(slug, db_session)).state != "sold_out":
        page = await page_context(
            grabs, settings, grab, who, error=NotSoldOut().translated, db=db_session
        )
        return panel(name, page, settings, NotSoldOut.status)
    # The waiting list's write comes first in the transaction (waitlist.join says why).
    await waitlist.join(db_session, tracker, tap_context(grab, who))
    page = await page_context(grabs, settings, grab, who, db=db_session, waitlisted=True)
    return panel(name, page, settings)


@get(**status_api("grabs", "A grab's state and stock", MISSING))
async def grab_status(slug: GrabSlug, grabs: NamedDependency[Grabs]) -> Response[GrabStatus]:
    """State and stock left (the live page's polling fallback)."""
    return Response(await grabs.status(slug), headers={"Cache-Control": "no-store"})


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
                404: MISSING,
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
        return refusal(ClaimRefusal, 401, "gate_required", _(GateRequired.default_message))
    try:
        claimed = await grabs.claim(slug, who, idempotency_key, ip)
    except RateLimited as exc:
        track_tap(tracker, grab, who, "rate_limited", None, replayed=False)
        return refusal(ClaimRefusal, 429, "rate_limited", exc.translated, exc.retry_after)
    track_answer(tracker, grab, who, claimed)
    return Response(claimed.answer)


@get(**events_api("grabs", "the grab", "Live state (server-sent events)", MISSING))
async def grab_events(
    request: Request[Any, Any, Any], slug: GrabSlug, grabs: NamedDependency[Grabs]
) -> Response[Any]:
    """The grab's live status as a stream of server-sent events (app.core.streams caps them)."""
    grab = await grabs.info(slug)
    return live_status(
        request, lambda: grabs.status(slug), grabs.live, ("grab", grab.id), _wait_seconds
    )


def _wait_seconds(status: GrabStatus) -> float:
    """How long a stream may sleep without news: until the start when it is near."""
    if status.starts_in is None:
        return 5.0
    return max(0.2, min(5.0, status.starts_in))


ROUTES: list[ControllerRouterHandler] = [
    Router(
        path="/",
        route_handlers=[
            grab_form,
            waitlist_form,
            grab_status,
            grab_claim,
            grab_events,
            *STAFF_ROUTES,
        ],
    )
]


async def grab_page(request: Request[Any, Any, Any], slug: str, db: AsyncSession) -> Template:
    """``/t/{slug}`` for a tool of kind grab (the site's tool page hands over here)."""
    grabs, settings = part(request, Grabs), part(request, Settings)
    grab = await grabs.info(slug, db)
    visitor = public_id_from(settings, request.scope)
    who = await grabs.claimant(visitor, db)
    # A code sent before a reload (the visitor went to read the SMS): the code box again.
    pending = pending_for(request, visitor) if who is None and visitor else None
    context = await page_context(grabs, settings, grab, who, db=db, pending=pending)
    return panel("tools/grab.html", context, settings)
