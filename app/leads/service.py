"""Leads: created or merged when a visitor authorises a phone; consent; privacy requests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.crypto import DataCipher
from app.core.errors import NotFound
from app.core.i18n import N_
from app.events.models import FunnelEvent
from app.gate.schemas import ConsentGiven, PhoneAuthorization
from app.leads.models import Consent, Lead
from app.leads.phone import mask
from app.visitors.models import Visitor


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def find_by_phone(db: AsyncSession, cipher: DataCipher, phone_e164: str) -> Lead | None:
    phone_hash = cipher.lookup_hash(phone_e164)
    return (await db.execute(select(Lead).where(Lead.phone_hash == phone_hash))).scalar()


async def authorize(
    db: AsyncSession,
    cipher: DataCipher,
    visitor: Visitor,
    auth: PhoneAuthorization,
    consent: ConsentGiven,
) -> tuple[Lead, bool]:
    """Attach the visitor to the lead for this phone, creating it if new.

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
    await db.flush()
    visitor.lead_id = lead.id
    visitor.authorized_at = auth.verified_at
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
    return lead, created


async def get(db: AsyncSession, lead_id: int) -> Lead:
    lead = await db.get(Lead, lead_id)
    if lead is None:
        raise NotFound(N_("No such lead."))
    return lead


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


async def delete_lead(db: AsyncSession, lead: Lead) -> None:
    """Erase the lead: the row and its consents go; events and visitors stay, anonymous."""
    visitor_ids = select(Visitor.id).where(Visitor.lead_id == lead.id)
    await db.execute(
        update(FunnelEvent)
        .where((FunnelEvent.lead_id == lead.id) | FunnelEvent.visitor_id.in_(visitor_ids))
        .values(lead_id=None, props={})
    )
    await db.execute(
        update(Visitor)
        .where(Visitor.lead_id == lead.id)
        .values(lead_id=None, authorized_at=None, auth_method="", user_agent="")
    )
    await db.delete(lead)
