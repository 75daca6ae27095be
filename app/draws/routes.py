"""Draws over HTTP: the admin JSON API (create, open, close, draw a tier, redraw), the public
API (state, enter, claim, proof) and the visitor page's forms; the feature's route table."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, URLEncodedBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.api import PROBLEM_JSON, answer, problems
from app.core.errors import RateLimited
from app.core.i18n import gettext as _
from app.core.params import QueryNumber
from app.core.refusals import refusal
from app.draws.proof import Proof
from app.draws.public import PUBLIC_ROUTES
from app.draws.schemas import (
    ClaimBody,
    ClaimForm,
    ClaimResult,
    DrawCreate,
    DrawnTier,
    DrawSlug,
    DrawStatus,
    EnterAnswer,
    EnterBody,
    EnterForm,
    EnterRefusal,
)
from app.draws.service import Draws
from app.draws.views import page
from app.gate.service import GateRequired
from app.settings import Settings
from app.staff.schemas import Staff
from app.tools.api import status_api
from app.tools.staff import create_api, host_api
from app.visitors.web import public_id_from

_HOST_API = host_api("draws")
_MISSING = "No draw by that slug."
_NO_DRAW = {404: _MISSING}
# The visitor's bodies are optional (a default, so the schema names the type): no body is no
# share code and no passphrase, or no name and no address; ``null`` is refused as the schema says.
NO_ENTER_BODY, NO_CLAIM_BODY = EnterBody(), ClaimBody()


@post(**create_api("draws", "Create and publish a draw"))
async def api_create(
    db_session: NamedDependency[AsyncSession],
    draws: NamedDependency[Draws],
    staff: NamedDependency[Staff],
    data: JSONBody[DrawCreate],
) -> DrawStatus:
    """Create a draw and publish it: its secret seed is drawn and the commitment (SHA-256 of
    the seed) published at once. Entries open on the schedule or when a host opens them."""
    info = await draws.create(db_session, data, by=staff.username)
    return await draws.status(info.slug, db_session)


@post(
    "/api/v1/admin/draws/{slug:str}/open",
    summary="Open a draw's entries now",
    responses=problems(400, 401, 403, 415, why={**_NO_DRAW, 409: "The draw is closed."}),
    **_HOST_API,
)
async def api_open(
    slug: DrawSlug, db_session: NamedDependency[AsyncSession], draws: NamedDependency[Draws]
) -> DrawStatus:
    """Open the entries now, whatever the schedule (host or marketer token)."""
    await draws.open(db_session, slug)
    return await draws.status(slug, db_session)


@post(
    "/api/v1/admin/draws/{slug:str}/close",
    summary="Close a draw's entries and freeze the list",
    responses=problems(400, 401, 403, 415, 503, why=_NO_DRAW),
    **_HOST_API,
)
async def api_close(
    slug: DrawSlug, db_session: NamedDependency[AsyncSession], draws: NamedDependency[Draws]
) -> DrawStatus:
    """Close the entries now and freeze the entrant list: its SHA-256 and count are published
    (idempotent)."""
    await draws.close(db_session, slug)
    return await draws.status(slug, db_session)


@post(
    "/api/v1/admin/draws/{slug:str}/draw",
    summary="Draw a tier",
    responses=problems(
        400, 401, 403, 415, 503, why={**_NO_DRAW, 409: "The entries are still open."}
    ),
    **_HOST_API,
)
async def api_draw(
    slug: DrawSlug,
    tier: QueryNumber,
    db_session: NamedDependency[AsyncSession],
    draws: NamedDependency[Draws],
) -> DrawnTier:
    """Draw tier ``tier`` (from 1, in the order the tiers were given). Drawing a drawn tier
    again answers the same winners (``replayed``); fewer entrants than prizes: all of them
    win and ``undrawn`` prizes stay undrawn (``short``)."""
    return await draws.draw_tier(db_session, slug, tier)


@post(
    "/api/v1/admin/draws/{slug:str}/redraw",
    summary="Call up reserves for lapsed winners",
    responses=problems(400, 401, 403, 415, why={**_NO_DRAW, 409: "The tier is not drawn."}),
    **_HOST_API,
)
async def api_redraw(
    slug: DrawSlug,
    tier: QueryNumber,
    db_session: NamedDependency[AsyncSession],
    draws: NamedDependency[Draws],
) -> DrawStatus:
    """Every winner of the tier who did not claim by the deadline is replaced by the next
    reserve, in order. Nobody can be picked or left out by hand."""
    await draws.redraw(db_session, slug, tier)
    return await draws.status(slug, db_session)


@get(**status_api("draws", "A draw's state, entrants and winners", _MISSING))
async def api_status(slug: DrawSlug, draws: NamedDependency[Draws]) -> Response[DrawStatus]:
    """State, entrant count, the commitment, and each tier's winners (masked phones)."""
    return Response(await draws.status(slug), headers={"Cache-Control": "no-store"})


@post(
    "/api/v1/draws/{slug:str}/enter",
    status_code=200,
    summary="Enter a draw",
    tags=["draws"],
    responses={
        **problems(400, 413, 415, why=_NO_DRAW),
        401: answer(EnterRefusal, 'No verified phone: `"result": "gate_required"`.', PROBLEM_JSON),
        429: answer(EnterRefusal, 'Too many attempts: `"result": "rate_limited"`.', PROBLEM_JSON),
    },
)
async def api_enter(
    request: Request[Any, Any, Any],
    slug: DrawSlug,
    draws: NamedDependency[Draws],
    settings: NamedDependency[Settings],
    ip: NamedDependency[str],
    data: JSONBody[EnterBody] = NO_ENTER_BODY,
) -> Response[EnterAnswer]:
    """Enter the visitor's (cookie) verified phone: ``result`` is entered, already_entered,
    not_open or not_eligible (``reason``). Idempotent: one entry per phone."""
    await draws.cached(slug)  # 404 first; the entry reads the same settings
    who = await draws.entrant(public_id_from(settings, request.scope))
    if who is None:
        return refusal(EnterRefusal, 401, "gate_required", _(GateRequired.default_message))
    try:
        entered = await draws.enter(slug, who, data, ip)
    except RateLimited as exc:
        return refusal(EnterRefusal, 429, "rate_limited", exc.translated, exc.retry_after)
    return Response(entered)


@post(
    "/api/v1/draws/{slug:str}/claim",
    status_code=200,
    summary="Claim a won prize",
    tags=["draws"],
    responses=problems(
        400, 401, 413, 415, why={404: "No draw, or nothing won.", 409: "Too late to claim."}
    ),
)
async def api_claim(
    request: Request[Any, Any, Any],
    slug: DrawSlug,
    db_session: NamedDependency[AsyncSession],
    draws: NamedDependency[Draws],
    settings: NamedDependency[Settings],
    data: JSONBody[ClaimBody] = NO_CLAIM_BODY,
) -> ClaimResult:
    """The winner (cookie) confirms every prize they won, within the claim deadline."""
    who = await draws.entrant(public_id_from(settings, request.scope), db_session)
    if who is None:
        raise GateRequired()
    return ClaimResult(prizes=await draws.claim(db_session, slug, who, data))


@get(
    "/api/v1/draws/{slug:str}/proof",
    summary="The draw's proof bundle",
    tags=["draws"],
    responses=problems(400, why={**_NO_DRAW, 409: "Not every tier is drawn yet."}),
)
async def api_proof(
    slug: DrawSlug, db_session: NamedDependency[AsyncSession], draws: NamedDependency[Draws]
) -> Proof:
    """Everything needed to recompute the winners (docs/draws.md): `leadkit draws verify`
    reads this file."""
    return await draws.proof(db_session, slug)


@post("/t/{slug:str}/enter", status_code=200)
async def enter_form(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    draws: NamedDependency[Draws],
    settings: NamedDependency[Settings],
    ip: NamedDependency[str],
    data: URLEncodedBody[EnterForm],
) -> Template:
    """The page's enter button: the page again, with the outcome. (No request session: the
    entry is written in a transaction of its own, then the page is read.)"""
    who = await draws.entrant(public_id_from(settings, request.scope))
    entered, error, status = None, None, 200
    if who is None:
        status = 401
    else:
        try:
            entered = await draws.enter(slug, who, data, ip)
        except RateLimited as exc:
            error, status = exc.translated, 429
    async with draws.sessionmaker() as db:
        return await page(request, draws, slug, db, entered=entered, error=error, status=status)


@post("/t/{slug:str}/claim", status_code=200)
async def claim_form(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    draws: NamedDependency[Draws],
    settings: NamedDependency[Settings],
    data: URLEncodedBody[ClaimForm],
) -> Template:
    who = await draws.entrant(public_id_from(settings, request.scope), db_session)
    if who is None:
        return await page(request, draws, slug, db_session, status=401)
    await draws.claim(db_session, slug, who, data)
    return await page(request, draws, slug, db_session)


ROUTES: list[ControllerRouterHandler] = [
    Router(
        path="/",
        route_handlers=[
            api_create,
            api_open,
            api_close,
            api_draw,
            api_redraw,
            api_status,
            api_enter,
            api_claim,
            api_proof,
            enter_form,
            claim_form,
            *PUBLIC_ROUTES,
        ],
    )
]
