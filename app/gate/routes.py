"""The gate over HTTP: the partial's form routes (htmx or plain), the JSON contract, and the
development SMS inbox."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import CacheControlHeader, Cookie
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.api import problems
from app.core.bundles import bundle
from app.core.errors import DomainError, NotFound
from app.core.forms import catch_refusal
from app.core.pages import page_or_partial
from app.core.phone import normalise
from app.core.state import part
from app.core.web import safe_next
from app.events.schemas import (
    CodeSent,
    EventContext,
)
from app.events.service import Tracker, visitor_context
from app.gate.pending import Pending, forget_pending, pending_cookie, pending_for
from app.gate.schemas import (
    CodeRequest,
    CodeRequestForm,
    CodeSentAnswer,
    CodeVerify,
    ProofChallenge,
    VerifiedAnswer,
)
from app.gate.service import CHALLENGE_URL, ChallengeRequired, Gate
from app.gate.views import gate_context, tool_gate_copy
from app.leads.schemas import ConsentGiven
from app.settings import Settings
from app.staff.auth import requires_role
from app.tools import service as tools
from app.tools.kinds import Kinds
from app.visitors.models import Visitor

NO_STORE = CacheControlHeader(no_store=True)


async def gate_events(db: AsyncSession, visitor: Visitor, tool_slug: str) -> EventContext:
    """The gate's events belong to the tool it guards, when the caller says which."""
    tool = await tools.find_published(db, tool_slug) if tool_slug else None
    return (
        visitor_context(visitor, tool.id, tool.current_version)
        if tool
        else visitor_context(visitor)
    )


def slug_of(next_path: str) -> str:
    """``/t/renovation?x`` → ``renovation``: the gate partial knows its page, not its tool."""
    match = re.match(r"^/t/([A-Za-z0-9_-]{1,64})(?:[/?#]|$)", next_path)
    return match.group(1) if match else ""


async def _copy(
    request: Request[Any, Any, Any], db: AsyncSession, next_path: str
) -> dict[str, str]:
    """The words of the gate on the page ``next_path``: its tool's kind's, or the tool's own."""
    return await tool_gate_copy(db, part(request, Kinds), slug_of(next_path))


@dataclass(frozen=True, slots=True)
class GateVisit:
    """What sending and checking a code use: the request, its session, the gate, the tracker
    and the visitor asking, from where (one dependency, ``VISIT``)."""

    request: HTMXRequest
    db: AsyncSession
    settings: Settings
    gate: Gate
    tracker: Tracker
    visitor: Visitor
    ip: str

    async def events(self, tool_slug: str) -> EventContext:
        return await gate_events(self.db, self.visitor, tool_slug)

    def consent(self) -> ConsentGiven:
        return ConsentGiven(
            notice_version=self.settings.privacy_notice_version,
            ip=self.ip,
            user_agent=self.request.headers.get("user-agent", ""),
        )

    async def authorise(self, phone: str, code: str, tool_slug: str) -> None:
        """Check the code; on success the visitor is authorised (``Gate.authorise``)."""
        await self.gate.authorise(
            self.db,
            self.tracker,
            self.visitor,
            phone=phone,
            code=code,
            consent=self.consent(),
            ctx=await self.events(tool_slug),
        )


VISIT = {"visit": bundle(GateVisit)}


@post("/gate/code", status_code=200, dependencies=VISIT)
async def gate_code_form(
    visit: NamedDependency[GateVisit], data: URLEncodedBody[CodeRequestForm]
) -> Template:
    """The gate partial's "send code" button."""
    request, settings, gate, ip = visit.request, visit.settings, visit.gate, visit.ip
    consent = data.consent in ("on", "true", "1")
    copy = await _copy(request, visit.db, data.next)
    async with catch_refusal() as refused:
        phone = await gate.send_code(data.phone, consent=consent, ip=ip, proof=data.altcha)
    if refused:
        pending = pending_for(request, visit.visitor.public_id)
        if pending is not None and refused.retry_after and _same_phone(pending, data.phone):
            # Asked again for the number a code just went to (the page was reloaded, or the
            # button tapped twice): that code is on its way, so the box to type it in.
            ctx = gate_context(settings, next=data.next, pending=pending, copy=copy)
            return _gate_template(request, ctx, 200)
        ctx = gate_context(
            settings,
            next=data.next,
            phone=data.phone,
            error=refused.message,
            wait=refused.retry_after,
            # A solved challenge is spent: the next try needs a new one whenever it is required.
            challenge=isinstance(refused.error, ChallengeRequired)
            or await gate.challenge_required(ip),
            consent=consent,
            copy=copy,
        )
        headers = refused.headers if refused.retry_after else None
        status = refused.status
        if request.htmx and status >= 500:
            # htmx swaps no 5xx answer (templates/_head.html), and this one is the partial
            # telling the visitor what happened: the status goes in the plain page only.
            status = 200
        return _gate_template(request, ctx, status, headers)
    visit.tracker.track(await visit.events(slug_of(data.next)), CodeSent())
    ctx = gate_context(
        settings,
        next=data.next,
        phone=phone,
        sent=True,
        wait=settings.otp_resend_seconds,
        copy=copy,
    )
    remember = pending_cookie(settings, gate.cipher, visit.visitor.public_id, phone)
    return _gate_template(request, ctx, 200, cookies=[remember])


def _same_phone(pending: Pending, raw: str) -> bool:
    try:
        return normalise(raw) == pending.phone
    except DomainError:
        return False


@post("/gate/verify", status_code=303, dependencies=VISIT)
async def gate_verify_form(
    visit: NamedDependency[GateVisit], data: URLEncodedBody[CodeRequestForm]
) -> Template | Response[Any]:
    """The gate partial's "verify" button: on success the page loads again with the gate
    open, at the place its ``next`` names (``/t/slug#full``: the result just unlocked)."""
    request = visit.request
    async with catch_refusal(visit.db) as refused:
        await visit.authorise(data.phone, data.code, slug_of(data.next))
    if refused:
        ctx = gate_context(
            visit.settings,
            next=data.next,
            phone=data.phone,
            sent=True,
            error=refused.message,
            wait=_resend_wait(request, visit.visitor, data.phone),
            copy=await _copy(request, visit.db, data.next),
        )
        return _gate_template(request, ctx, refused.status)
    target = safe_next(data.next)
    done = [forget_pending(visit.settings)]
    if request.htmx:
        return Response(b"", status_code=200, headers={"HX-Redirect": target}, cookies=done)
    return Redirect(target, status_code=303, cookies=done)


@post("/gate/change", status_code=200)
async def gate_change_form(
    request: HTMXRequest,
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    data: URLEncodedBody[CodeRequestForm],
) -> Template:
    """The code box's "use another number": the number form again. The code already sent
    stays pending: asking again for that number brings its code box back."""
    copy = await _copy(request, db_session, data.next)
    return _gate_template(request, gate_context(settings, next=data.next, copy=copy), 200)


def _resend_wait(request: Request[Any, Any, Any], visitor: Visitor, phone: str) -> int:
    """What is left of the resend countdown for the code pending for ``phone``."""
    pending = pending_for(request, visitor.public_id)
    if pending is None or not _same_phone(pending, phone):
        return 0
    return pending.resend_in(part(request, Settings), time.time())


def _gate_template(
    request: HTMXRequest,
    ctx: dict[str, Any],
    status: int,
    headers: dict[str, str] | None = None,
    cookies: list[Cookie] | None = None,
) -> Template:
    return page_or_partial(
        request,
        "gate/page.html",
        ctx,
        partial="gate/_gate.html",
        status_code=status,
        headers=headers,
        cookies=cookies,
    )


@post(
    "/api/v1/gate/code",
    status_code=202,
    dependencies=VISIT,
    summary="Send an SMS code",
    tags=["gate"],
    responses=problems(
        413,
        415,
        429,
        503,
        why={
            400: "Not a phone number, a country codes are not sent to, no consent, a number the "
            "gateway says cannot receive text messages (`number_cannot_receive`), or not a "
            "valid body.",
            403: "A proof of work is required (`challenge_required`) or did not pass "
            "(`challenge_failed`): solve the problem's `challenge` (ALTCHA) and send the "
            "payload as `altcha`; a new one is at `challenge_url`.",
            429: "Too many codes for this number or network, or the global SMS budget is spent "
            "(`sms_budget_spent`); wait `Retry-After` seconds.",
            503: "The SMS gateway did not send the code; nothing was counted, try again after "
            "`Retry-After` seconds.",
        },
    ),
)
async def api_gate_code(
    visit: NamedDependency[GateVisit], data: JSONBody[CodeRequest]
) -> CodeSentAnswer:
    """Send a one-time code by SMS to the phone, once the visitor consented (``"consent":
    true``). ``tool`` is the slug whose gate this is, for its funnel. ``altcha``: a solved
    proof of work, needed when a 403 asks for one."""
    gate = visit.gate
    phone = await gate.send_code(
        data.phone, consent=data.consent is True, ip=visit.ip, proof=data.altcha
    )
    visit.tracker.track(await visit.events(data.tool), CodeSent())
    return CodeSentAnswer(
        status="sent",
        phone=phone,
        expires_in=gate.settings.otp_ttl_seconds,
        resend_in=gate.settings.otp_resend_seconds,
    )


@post(
    "/api/v1/gate/verify",
    status_code=200,
    dependencies=VISIT,
    summary="Verify the SMS code",
    tags=["gate"],
    responses=problems(
        413, 415, why={400: "The code is wrong, expired or used, or the body is not valid."}
    ),
)
async def api_gate_verify(
    visit: NamedDependency[GateVisit], data: JSONBody[CodeVerify]
) -> VerifiedAnswer:
    """Check the code; on success the visitor (cookie) is authorised: every gate opens."""
    await visit.authorise(data.phone, data.code, data.tool)
    return VerifiedAnswer(status="authorised", method="sms")


@get(CHALLENGE_URL, summary="A proof-of-work challenge", tags=["gate"], cache_control=NO_STORE)
async def api_gate_challenge(gate: NamedDependency[Gate]) -> ProofChallenge:
    """A fresh ALTCHA (proof of work v2) challenge: ``{"parameters": {"algorithm":
    "PBKDF2/SHA-256", "nonce", "salt", "cost", "keyLength", "keyPrefix", "expiresAt"},
    "signature"}``. Find the counter whose derived key starts with ``keyPrefix``, then send
    base64(JSON ``{"challenge": <this>, "solution": {"counter", "derivedKey"}}``) as
    ``altcha`` with the code request. Single use; it expires at ``expiresAt``."""
    return msgspec.convert(gate.pow.challenge(), ProofChallenge)


@get("/staff/admin/sms-alerts", guards=[requires_role("admin")], cache_control=NO_STORE)
async def sms_alerts_fragment(gate: NamedDependency[Gate]) -> Template:
    """The SMS budget banner for admins' pages (loaded by base_staff.html); empty when fine."""
    return Template("staff/_sms_alerts.html", context={"sms_alerts": await gate.budget_alerts()})


@get("/dev/sms")
async def dev_sms(gate: NamedDependency[Gate], phone: FromQuery[str] = "") -> dict[str, str]:
    """Development inbox (console provider only; absent in production)."""
    if gate.settings.is_prod or gate.provider.name != "console":
        raise NotFound()
    code = await gate.dev_inbox(phone)
    if code is None:
        raise NotFound()
    return {"code": code}


ROUTES: list[ControllerRouterHandler] = [
    gate_code_form,
    gate_verify_form,
    gate_change_form,
    api_gate_code,
    api_gate_verify,
    api_gate_challenge,
    sms_alerts_fragment,
    dev_sms,
]
