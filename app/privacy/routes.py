"""Visitor-facing privacy pages: the notice, and withdrawing consent or deleting one's data
after proving the phone again with a fresh code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from litestar import Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import URLEncodedBody
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from msgspec.structs import replace
from sqlalchemy.ext.asyncio import AsyncSession

from app.brand.book import BrandBook
from app.core.bundles import bundle
from app.core.crypto import DataCipher
from app.core.forms import catch_refusal
from app.core.phone import InvalidPhone, dial, display, normalise_contact
from app.core.ratelimit import RateLimiter
from app.core.state import part
from app.db.engine import Storage
from app.events.schemas import ConsentWithdrawn, DataDeleted, EventContext
from app.events.service import Tracker, visitor_context
from app.gate.schemas import CodeRequestForm
from app.gate.service import Gate
from app.grabs.service import Grabs
from app.leads import service as leads
from app.leads.models import Lead
from app.privacy.erasure import Erasure, erase, forget_elsewhere
from app.reports.service import ReportRenderer
from app.settings import Settings
from app.sms.providers import SMS_PROCESSORS
from app.visitors.models import Visitor
from app.visitors.web import VISITOR_COOKIE

PRIVACY_COOKIE = "lk_priv"
PROOF_SECONDS = 600
MANAGE = "/privacy/manage"


def _signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="leadkit.privacy")


def _proven_lead_id(request: Request[Any, Any, Any], settings: Settings) -> int | None:
    value = request.cookies.get(PRIVACY_COOKIE)
    if not value:
        return None
    try:
        lead_id = _signer(settings).loads(value, max_age=PROOF_SECONDS)
    except (BadSignature, SignatureExpired):
        return None
    return lead_id if isinstance(lead_id, int) else None


async def _proven_lead(
    request: Request[Any, Any, Any], db: AsyncSession, settings: Settings
) -> Lead | None:
    """The lead whose phone this browser re-verified in the last PROOF_SECONDS, if any."""
    lead_id = _proven_lead_id(request, settings)
    return None if lead_id is None else await leads.get(db, lead_id)


def _cookie(settings: Settings, lead_id: int | None) -> Cookie:
    return Cookie(
        key=PRIVACY_COOKIE,
        value=_signer(settings).dumps(lead_id) if lead_id else "",
        max_age=PROOF_SECONDS if lead_id else 0,
        path="/privacy",
        httponly=True,
        samesite="lax",
        secure=settings.is_prod,
    )


def _forgetting(request: Request[Any, Any, Any], erasure: Erasure) -> BackgroundTask:
    """``forget_elsewhere`` once the response is on its way, after the request's transaction
    has committed (the unit of work commits before anything is sent: app/db/uow.py)."""
    return BackgroundTask(
        forget_elsewhere,
        erasure,
        sessionmaker=part(request, Storage).sessionmaker,
        gate=part(request, Gate),
        grabs=part(request, Grabs),
        limiter=part(request, RateLimiter),  # type: ignore[type-abstract]
        reports=part(request, ReportRenderer),
    )


def _page(step: str, settings: Settings, status: int = 200, **extra: Any) -> Template:
    """The manage page at ``step``: phone → code → actions (or none / withdrawn / deleted)."""
    page = {
        "step": step,
        "notice_version": settings.privacy_notice_version,
        "phone": "",
        "error": None,
        **extra,
    }
    return Template("privacy/manage.html", context=page, status_code=status)


def _contact(text: str) -> dict[str, str]:
    """A contact as the notice shows it: a phone number as people read it, with its tel: link;
    anything else (an e-mail address, a postal address) as written."""
    try:
        number = normalise_contact(text)
    except InvalidPhone:
        return {"text": text.strip(), "tel": ""}
    return {"text": display(number), "tel": dial(number)}


@get("/privacy")
async def notice(request: Request[Any, Any, Any], settings: NamedDependency[Settings]) -> Template:
    """The notice PIPL asks for: who handles the data and how to reach them, what for, who
    else receives it (the SMS gateway), how long it is kept, how to withdraw or delete. The
    business and its contact default to the brand an admin set (app/brand)."""
    brand = part(request, BrandBook).current()
    contact = settings.privacy_contact.strip() or brand.contact_phone
    return Template(
        "privacy/notice.html",
        context={
            "notice_version": settings.privacy_notice_version,
            "business": settings.privacy_business_name.strip() or brand.name,
            "contact": _contact(contact) if contact else None,
            "processor": SMS_PROCESSORS[settings.sms_provider],
            "retention_days": settings.privacy_retention_days,
        },
    )


@get(MANAGE)
async def manage(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
) -> Template:
    lead = await _proven_lead(request, db_session, settings)
    if lead is None:
        return _page("phone", settings)
    return _page(
        "actions",
        settings,
        masked=lead.phone_masked,
        consents=await leads.consents(db_session, lead.id),
    )


@post("/privacy/code", status_code=200)
async def send_code(
    settings: NamedDependency[Settings],
    gate: NamedDependency[Gate],
    ip: NamedDependency[str],
    data: URLEncodedBody[CodeRequestForm],
) -> Template:
    async with catch_refusal() as refused:
        phone = await gate.send_code(data.phone, consent=data.consent == "on", ip=ip)
    if refused:
        return _page("phone", settings, refused.status, phone=data.phone, error=refused.message)
    return _page("code", settings, phone=phone)


@post("/privacy/verify", status_code=303)
async def verify(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    gate: NamedDependency[Gate],
    cipher: NamedDependency[DataCipher],
    data: URLEncodedBody[CodeRequestForm],
) -> Template | Redirect:
    async with catch_refusal() as refused:
        auth = await gate.verify(data.phone, data.code)
    if refused:
        return _page("code", settings, refused.status, phone=data.phone, error=refused.message)
    lead = await leads.find_by_phone(db_session, cipher, auth.phone)
    if lead is None:
        # Nothing in the database; whatever a deletion could not clear elsewhere (a store that
        # was down), and this proof's own code and counters, are cleared now.
        page = _page("none", settings)
        page.background = _forgetting(request, Erasure(phone_hash=cipher.lookup_hash(auth.phone)))
        return page
    return Redirect(MANAGE, status_code=303, cookies=[_cookie(settings, lead.id)])


@dataclass(frozen=True, slots=True)
class Proven:
    """A step on the data of the lead this browser proved its phone for (withdraw, delete):
    ``lead`` is None when there is no fresh proof, and the step goes back to the manage page."""

    request: Request[Any, Any, Any]
    db: AsyncSession
    settings: Settings
    tracker: Tracker
    visitor: Visitor

    async def lead(self) -> Lead | None:
        return await _proven_lead(self.request, self.db, self.settings)


PROVEN = {"proven": bundle(Proven)}


@post("/privacy/withdraw", status_code=200, dependencies=PROVEN)
async def withdraw(proven: NamedDependency[Proven]) -> Template | Redirect:
    lead = await proven.lead()
    if lead is None:
        return Redirect(MANAGE, status_code=303)
    await leads.withdraw_consent(proven.db, lead)
    ctx = replace(visitor_context(proven.visitor), lead_id=lead.id)
    proven.tracker.record(proven.db, ctx, ConsentWithdrawn())
    return _page("withdrawn", proven.settings)


@post("/privacy/delete", status_code=200, dependencies=PROVEN)
async def delete(proven: NamedDependency[Proven]) -> Template | Redirect:
    lead = await proven.lead()
    if lead is None:
        return Redirect(MANAGE, status_code=303)
    db, tracker, settings = proven.db, proven.tracker, proven.settings
    erasure = await erase(db, tracker, lead, proven.visitor)
    # That a deletion happened, and from which kind of browser: nothing that names anyone.
    tracker.record(db, EventContext(platform=proven.visitor.platform), DataDeleted())
    template = _page("deleted", settings)
    # The browser forgets its visitor id too: its next visit starts a new, unrelated visitor.
    forget_visitor = Cookie(
        key=VISITOR_COOKIE,
        value="",
        max_age=0,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.is_prod,
    )
    template.cookies = [_cookie(settings, None), forget_visitor]
    template.background = _forgetting(proven.request, erasure)
    return template


ROUTES: list[ControllerRouterHandler] = [notice, manage, send_code, verify, withdraw, delete]
