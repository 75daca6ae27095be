"""The gate over HTTP: the partial's form routes (htmx or plain), the JSON contract, and the
development SMS inbox."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from litestar_htmx import HTMXRequest
from msgspec.structs import replace
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.crypto import DataCipher
from app.core.errors import DomainError, NotFound
from app.core.web import safe_next
from app.events.schemas import (
    CodeRejected,
    CodeSent,
    EventContext,
    LeadCreated,
    LeadMerged,
    PhoneVerified,
)
from app.events.service import Tracker
from app.gate.schemas import CodeRequest, CodeRequestForm, CodeVerify, ConsentGiven
from app.gate.service import Gate
from app.leads import service as leads
from app.leads.phone import display
from app.settings import Settings
from app.tools import service as tools
from app.visitors.models import Visitor
from app.visitors.web import context


def gate_context(
    settings: Settings,
    *,
    next: str,
    phone: str = "",
    sent: bool = False,
    error: str | None = None,
    wait: int = 0,
) -> dict[str, Any]:
    """What the gate partial needs; ``phone`` is E.164 once a code was sent."""
    return {
        "gate": {
            "next": safe_next(next),
            "phone": phone,
            "display": display(phone) if sent and phone.startswith("+") else phone,
            "sent": sent,
            "error": error,
            "wait": wait,
            "notice_version": settings.privacy_notice_version,
        }
    }


async def gate_events(db: AsyncSession, visitor: Visitor, tool_slug: str) -> EventContext:
    """The gate's events belong to the tool it guards, when the caller says which."""
    tool = await tools.find_published(db, tool_slug) if tool_slug else None
    return context(visitor, tool.id, tool.current_version) if tool else context(visitor)


def slug_of(next_path: str) -> str:
    """``/t/renovation?x`` → ``renovation``: the gate partial knows its page, not its tool."""
    match = re.match(r"^/t/([A-Za-z0-9_-]{1,64})(?:[/?#]|$)", next_path)
    return match.group(1) if match else ""


async def _authorise(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    gate: Gate,
    cipher: DataCipher,
    tracker: Tracker,
    visitor: Visitor,
    settings: Settings,
    phone: str,
    code: str,
    ip: str,
    tool_slug: str,
) -> None:
    try:
        auth = await gate.verify(phone, code)
    except DomainError as exc:
        tracker.track(await gate_events(db, visitor, tool_slug), CodeRejected(reason=exc.code))
        raise
    consent = ConsentGiven(
        notice_version=settings.privacy_notice_version,
        ip=ip,
        user_agent=request.headers.get("user-agent", ""),
    )
    _, created = await leads.authorize(db, cipher, visitor, auth, consent)
    ctx = replace(await gate_events(db, visitor, tool_slug), lead_id=visitor.lead_id)
    tracker.track(ctx, PhoneVerified(method=auth.method, level=auth.level))
    tracker.track(ctx, LeadCreated() if created else LeadMerged())


@post("/gate/code", status_code=200)
async def gate_code_form(
    request: HTMXRequest,
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    gate: NamedDependency[Gate],
    tracker: NamedDependency[Tracker],
    visitor: NamedDependency[Visitor],
    ip: NamedDependency[str],
    data: URLEncodedBody[CodeRequestForm],
) -> Template:
    """The gate partial's "send code" button."""
    try:
        phone = await gate.send_code(data.phone, consent=data.consent in ("on", "true", "1"), ip=ip)
    except DomainError as exc:
        ctx = gate_context(
            settings,
            next=data.next,
            phone=data.phone,
            error=exc.translated,
            wait=getattr(exc, "retry_after", 0) if exc.status == 429 else 0,
        )
        return _gate_template(request, ctx, exc.status)
    tracker.track(await gate_events(db_session, visitor, slug_of(data.next)), CodeSent())
    ctx = gate_context(
        settings, next=data.next, phone=phone, sent=True, wait=settings.otp_resend_seconds
    )
    return _gate_template(request, ctx, 200)


@post("/gate/verify", status_code=303)
async def gate_verify_form(
    request: HTMXRequest,
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    gate: NamedDependency[Gate],
    cipher: NamedDependency[DataCipher],
    tracker: NamedDependency[Tracker],
    visitor: NamedDependency[Visitor],
    ip: NamedDependency[str],
    data: URLEncodedBody[CodeRequestForm],
) -> Template | Response[Any]:
    """The gate partial's "verify" button: on success the page reloads with the gate open."""
    try:
        await _authorise(
            request,
            db_session,
            gate,
            cipher,
            tracker,
            visitor,
            settings,
            data.phone,
            data.code,
            ip,
            slug_of(data.next),
        )
    except DomainError as exc:
        ctx = gate_context(
            settings, next=data.next, phone=data.phone, sent=True, error=exc.translated
        )
        return _gate_template(request, ctx, exc.status)
    target = safe_next(data.next)
    if request.htmx:
        return Response(b"", status_code=200, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def _gate_template(request: HTMXRequest, ctx: dict[str, Any], status: int) -> Template:
    name = "gate/_gate.html" if request.htmx else "gate/page.html"
    return Template(name, context=ctx, status_code=status)


@post("/api/v1/gate/code", status_code=202)
async def api_gate_code(
    db_session: NamedDependency[AsyncSession],
    gate: NamedDependency[Gate],
    tracker: NamedDependency[Tracker],
    visitor: NamedDependency[Visitor],
    ip: NamedDependency[str],
    data: JSONBody[CodeRequest],
) -> dict[str, Any]:
    """Send a one-time code: 202, or 400 (bad phone, no consent), 429 (too many)."""
    phone = await gate.send_code(data.phone, consent=data.consent is True, ip=ip)
    tracker.track(await gate_events(db_session, visitor, data.tool), CodeSent())
    return {
        "status": "sent",
        "phone": phone,
        "expires_in": gate.settings.otp_ttl_seconds,
        "resend_in": gate.settings.otp_resend_seconds,
    }


@post("/api/v1/gate/verify", status_code=200)
async def api_gate_verify(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    gate: NamedDependency[Gate],
    cipher: NamedDependency[DataCipher],
    tracker: NamedDependency[Tracker],
    visitor: NamedDependency[Visitor],
    ip: NamedDependency[str],
    data: JSONBody[CodeVerify],
) -> dict[str, Any]:
    """Check the code: 200 and the visitor is authorised, 400 otherwise."""
    await _authorise(
        request,
        db_session,
        gate,
        cipher,
        tracker,
        visitor,
        settings,
        data.phone,
        data.code,
        ip,
        data.tool,
    )
    return {"status": "authorized", "method": "sms"}


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
    api_gate_code,
    api_gate_verify,
    dev_sms,
]
