"""Leads: created or merged when a visitor authorises a phone; consent; privacy requests."""

from __future__ import annotations

from msgspec.structs import replace
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import china_time, now
from app.core.crypto import DataCipher
from app.core.errors import Conflict, InvalidInput, PermissionDenied
from app.core.i18n import N_
from app.core.phone import mask
from app.core.sql import get_or_404
from app.events.schemas import EventContext, LeadCreated, LeadMerged, PhoneVerified
from app.events.service import Tracker
from app.leads.models import Consent, Lead
from app.leads.schemas import LEAD_STATUSES, ConsentGiven, LeadUpdate, PhoneAuthorisation
from app.staff.audit import audit
from app.staff.models import StaffUser
from app.staff.schemas import Staff
from app.tools.models import Submission, Tool
from app.visitors import service as visitors
from app.visitors.models import Visitor


async def find_by_phone(db: AsyncSession, cipher: DataCipher, phone_e164: str) -> Lead | None:
    phone_hash = cipher.lookup_hash(phone_e164)
    return (await db.execute(select(Lead).where(Lead.phone_hash == phone_hash))).scalar()


async def authorise(
    db: AsyncSession,
    cipher: DataCipher,
    tracker: Tracker,
    visitor: Visitor,
    auth: PhoneAuthorisation,
    consent: ConsentGiven,
    ctx: EventContext,
) -> tuple[Lead, bool]:
    """Attach the visitor to the lead for this phone, creating it if new, with the consent
    and the funnel events of the authorisation, all in the caller's transaction. Every gate
    method ends here (the SMS code today; the mini-program platforms' phone authorisation).

    Returns (lead, created). The visitor's earlier events join the lead's timeline through
    the visitor link; first source stays the lead's first, last source is updated."""
    lead = await find_by_phone(db, cipher, auth.phone)
    created = lead is None
    if lead is None:
        lead = Lead(
            phone_cipher=cipher.encrypt(auth.phone),
            phone_hash=cipher.lookup_hash(auth.phone),
            phone_masked=mask(auth.phone),
            first_link_id=visitor.first_link_id,
            first_src=visitor.first_src,
            last_link_id=visitor.last_link_id,
            last_src=visitor.last_src,
            first_platform=visitor.platform,
            auth_method=auth.method,
            status="new",
            needs={},
            notes="",
        )
        db.add(lead)
    else:
        if visitor.last_link_id is not None or visitor.last_src:
            lead.last_link_id, lead.last_src = visitor.last_link_id, visitor.last_src
        if lead.status == "withdrawn":
            lead.status = "new"
    lead.last_seen_at = auth.verified_at
    await visitors.ensure(db, visitor)
    await db.flush()
    visitor.lead_id = lead.id
    await _collect_answers(db, visitor, lead)
    visitor.authorised_at = auth.verified_at
    visitor.auth_method = auth.method
    db.add(
        Consent(
            lead_id=lead.id,
            visitor_id=visitor.id,
            notice_version=consent.notice_version,
            granted_at=auth.verified_at,
            ip=consent.ip[:64],
            user_agent=consent.user_agent[:255],
            detail={"method": auth.method, "level": auth.level},
        )
    )
    await db.flush()
    ctx = replace(ctx, visitor_id=visitor.id, lead_id=lead.id)
    tracker.record(db, ctx, PhoneVerified(method=auth.method, level=auth.level))
    tracker.record(db, ctx, LeadCreated() if created else LeadMerged())
    return lead, created


async def _collect_answers(db: AsyncSession, visitor: Visitor, lead: Lead) -> None:
    """Give the lead what the visitor told the tools before authorising: their submissions
    join the lead, and the newest answers per tool become the lead's needs."""
    await db.execute(
        update(Submission)
        .where(Submission.visitor_id == visitor.id, Submission.lead_id.is_(None))
        .values(lead_id=lead.id)
    )
    await refresh_needs(db, lead)


async def refresh_needs(db: AsyncSession, lead: Lead) -> None:
    """``lead.needs`` = {tool title: {label: shown value}}, from each tool's newest submission."""
    rows = await db.execute(
        select(Tool.title, Submission.summary)
        .join(Tool, Tool.id == Submission.tool_id)
        .where(Submission.lead_id == lead.id)
        .order_by(Submission.created_at, Submission.id)
    )
    needs = dict(lead.needs or {})
    for title, summary in rows:
        if summary:
            needs[title] = summary
    lead.needs = needs


async def get(db: AsyncSession, lead_id: int) -> Lead:
    return await get_or_404(db, Lead, lead_id, N_("No such lead."))


async def consents(db: AsyncSession, lead_id: int) -> list[Consent]:
    rows = await db.execute(select(Consent).where(Consent.lead_id == lead_id).order_by(Consent.id))
    return list(rows.scalars())


async def withdraw_consent(db: AsyncSession, lead: Lead) -> int:
    """Withdraw every live consent. Past processing stays lawful; follow-up stops."""
    result = await db.execute(
        update(Consent)
        .where(Consent.lead_id == lead.id, Consent.withdrawn_at.is_(None))
        .values(withdrawn_at=now())
    )
    lead.status = "withdrawn"
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def update_lead(
    db: AsyncSession, actor: Staff, lead: Lead, data: LeadUpdate, ip: str = ""
) -> list[str]:
    """Apply the lead page's form: status, owner and a new note (notes are append-only).

    Everything is checked before anything changes; each change is audited. Returns the names
    of the fields that changed."""
    if data.status not in LEAD_STATUSES:
        raise InvalidInput(N_("Unknown lead status."), fields={"status": "unknown"})
    if data.status != lead.status:
        if data.status == "withdrawn":
            raise InvalidInput(
                N_("Only the visitor can withdraw consent."), fields={"status": "withdrawn"}
            )
        if lead.status == "withdrawn":
            raise Conflict(
                N_("This lead withdrew consent; the status changes only if they authorise again."),
                fields={"status": "withdrawn"},
            )
    owner_id = int(data.owner_id) if data.owner_id else None
    if owner_id is not None and owner_id != lead.owner_id:
        owner = await db.get(StaffUser, owner_id)
        if owner is None or not owner.is_active or owner.role != "sales":
            raise InvalidInput(
                N_("A lead can be assigned only to an active sales staff member."),
                fields={"owner_id": "invalid"},
            )
    note = data.note.strip()
    target = f"lead:{lead.id}"
    changed: list[str] = []
    if data.status != lead.status:
        await audit(db, actor, "lead.status", target, {"from": lead.status, "to": data.status}, ip)
        lead.status = data.status
        changed.append("status")
    if owner_id != lead.owner_id:
        await audit(db, actor, "lead.owner", target, {"from": lead.owner_id, "to": owner_id}, ip)
        lead.owner_id = owner_id
        changed.append("owner")
    if note:
        entry = f"{china_time(now())} · {actor.display_name or actor.username}\n{note}"
        lead.notes = f"{lead.notes}\n\n{entry}" if lead.notes else entry
        await audit(db, actor, "lead.note", target, {"length": len(note)}, ip)
        changed.append("notes")
    await db.flush()
    return changed


async def reveal_phone(
    db: AsyncSession, cipher: DataCipher, actor: Staff, lead: Lead, ip: str = ""
) -> str:
    """The full number (E.164) for staff who must call the lead; every reveal is audited."""
    if not actor.has_role("sales"):
        raise PermissionDenied()
    if lead.status == "withdrawn":
        raise Conflict(
            N_("This lead withdrew consent; their number is no longer shown."),
            fields={"status": "withdrawn"},
        )
    phone = cipher.decrypt(lead.phone_cipher)
    await audit(db, actor, "lead.reveal_phone", f"lead:{lead.id}", {}, ip)
    return phone
