"""Read side of the staff lead views: the filtered list, and one lead with its whole timeline.

Each page costs a fixed handful of queries however many leads or events it shows: look-ups
(tools, links, owners) are fetched once per page in bulk, never per row.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Literal

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import china_time
from app.core.errors import InvalidInput
from app.core.i18n import N_
from app.events.labels import Detail, describe
from app.events.models import FunnelEvent
from app.events.service import timeline
from app.leads import service
from app.leads.models import Lead
from app.leads.schemas import NO_LINK, PAGE_SIZE, LeadFilter
from app.links.models import Account, TrackedLink
from app.staff.models import StaffUser
from app.tools.models import Tool
from app.visitors.models import Visitor

TIMELINE_LIMIT = 2000


class Source(msgspec.Struct, kw_only=True, frozen=True):
    """Where a lead or an event came from: a tracked link, a raw ``src`` code that matched no
    link ("unknown"), or nothing at all ("none": organic traffic)."""

    kind: Literal["link", "unknown", "none"]
    code: str = ""
    account: str = ""
    account_kind: str = ""
    channel: str = ""
    campaign: str = ""


# The columns of a tracked link and its account that ``_source`` reads.
SOURCE_COLUMNS = (
    TrackedLink.code,
    TrackedLink.channel,
    TrackedLink.campaign,
    Account.name.label("account_name"),
    Account.kind.label("account_kind"),
)


def _source(link: Any | None, raw_src: str = "") -> Source:
    if link is not None:
        return Source(
            kind="link",
            code=link.code,
            account=link.account_name,
            account_kind=link.account_kind,
            channel=link.channel,
            campaign=link.campaign,
        )
    if raw_src:
        return Source(kind="unknown", code=raw_src)
    return Source(kind="none")


class ToolOption(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    slug: str
    title: str
    kind: str


class AccountOption(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    name: str
    kind: str


class LeadRow(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    phone_masked: str
    status: str
    created: str  # China time
    source: Source
    tools: list[str]


class LeadPage(msgspec.Struct, kw_only=True, frozen=True):
    rows: list[LeadRow]
    total: int
    page: int
    pages: int
    filter: LeadFilter
    tools: list[ToolOption]
    accounts: list[AccountOption]


async def tool_options(db: AsyncSession) -> list[ToolOption]:
    rows = await db.execute(select(Tool.id, Tool.slug, Tool.title, Tool.kind).order_by(Tool.id))
    return [ToolOption(id=r.id, slug=r.slug, title=r.title, kind=r.kind) for r in rows]


async def _account_options(db: AsyncSession) -> list[AccountOption]:
    rows = await db.execute(
        select(Account.id, Account.name, Account.kind).order_by(Account.kind, Account.name)
    )
    return [AccountOption(id=r.id, name=r.name, kind=r.kind) for r in rows]


async def empty_page(db: AsyncSession) -> LeadPage:
    """No leads, but the filter form's choices: what a page with bad filters shows."""
    return LeadPage(
        rows=[],
        total=0,
        page=1,
        pages=1,
        filter=LeadFilter(),
        tools=await tool_options(db),
        accounts=await _account_options(db),
    )


async def list_leads(db: AsyncSession, wanted: LeadFilter) -> LeadPage:
    """One page of leads, newest first, with first source and the tools each one used."""
    tools = await tool_options(db)
    accounts = await _account_options(db)
    conditions: list[Any] = []
    if wanted.status:
        conditions.append(Lead.status == wanted.status)
    if wanted.channel == NO_LINK:
        conditions.append(Lead.first_link_id.is_(None))
    elif wanted.channel:
        conditions.append(TrackedLink.channel == wanted.channel)
    if wanted.account_id is not None:
        conditions.append(TrackedLink.account_id == wanted.account_id)
    if wanted.days.start_utc is not None:
        conditions.append(Lead.created_at >= wanted.days.start_utc)
    if wanted.days.end_utc is not None:
        conditions.append(Lead.created_at < wanted.days.end_utc)
    if wanted.tool:
        tool_id = next((t.id for t in tools if t.slug == wanted.tool), None)
        if tool_id is None:
            raise InvalidInput(N_("Unknown tool."), fields={"tool": "unknown"})
        used = (
            select(FunnelEvent.id)
            .join(Visitor, Visitor.id == FunnelEvent.visitor_id)
            .where(Visitor.lead_id == Lead.id, FunnelEvent.tool_id == tool_id)
            .exists()
        )
        conditions.append(used)

    sourced = (
        select(Lead.id)
        .outerjoin(TrackedLink, TrackedLink.id == Lead.first_link_id)
        .where(*conditions)
    )
    total = int(await db.scalar(select(func.count()).select_from(sourced.subquery())) or 0)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(wanted.page, pages)
    rows = (
        await db.execute(
            select(
                Lead.id,
                Lead.phone_masked,
                Lead.status,
                Lead.created_at,
                Lead.first_src,
                *SOURCE_COLUMNS,
            )
            .outerjoin(TrackedLink, TrackedLink.id == Lead.first_link_id)
            .outerjoin(Account, Account.id == TrackedLink.account_id)
            .where(*conditions)
            .order_by(Lead.created_at.desc(), Lead.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
    ).all()
    used_tools = await _tools_used(db, [r.id for r in rows], {t.id: t.title for t in tools})
    return LeadPage(
        rows=[
            LeadRow(
                id=r.id,
                phone_masked=r.phone_masked,
                status=r.status,
                created=china_time(r.created_at),
                source=_source(r if r.code is not None else None, r.first_src),
                tools=used_tools.get(r.id, []),
            )
            for r in rows
        ],
        total=total,
        page=page,
        pages=pages,
        filter=wanted,
        tools=tools,
        accounts=accounts,
    )


async def _tools_used(
    db: AsyncSession, lead_ids: list[int], titles: dict[int, str]
) -> dict[int, list[str]]:
    """Titles of the tools each lead's visitors had events in, in one query for the page."""
    if not lead_ids:
        return {}
    pairs = await db.execute(
        select(Visitor.lead_id, FunnelEvent.tool_id)
        .join(FunnelEvent, FunnelEvent.visitor_id == Visitor.id)
        .where(Visitor.lead_id.in_(lead_ids), FunnelEvent.tool_id.is_not(None))
        .distinct()
    )
    used: dict[int, list[str]] = defaultdict(list)
    for lead_id, tool_id in pairs:
        if lead_id is not None and tool_id in titles:
            used[lead_id].append(titles[tool_id])
    return {lead_id: sorted(names) for lead_id, names in used.items()}


class ConsentView(msgspec.Struct, kw_only=True, frozen=True):
    notice_version: str
    granted: str
    ip: str
    method: str
    withdrawn: str  # empty while the consent stands


class TimelineEntry(msgspec.Struct, kw_only=True, frozen=True):
    at: str
    name: str
    tool: str
    platform: str
    source: Source
    details: list[Detail]


class OwnerOption(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    name: str


class LeadDetail(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    phone_masked: str
    status: str
    created: str
    last_seen: str
    first_platform: str
    first_source: Source
    last_source: Source
    needs: list[tuple[str, str]]
    notes: str
    owner_id: int | None
    owner_name: str
    owners: list[OwnerOption]
    consents: list[ConsentView]
    timeline: list[TimelineEntry]
    timeline_truncated: bool


async def lead_detail(db: AsyncSession, lead_id: int) -> LeadDetail:
    """Everything the lead page shows: needs, consents, owner, notes and the whole path."""
    lead = await service.get(db, lead_id)
    consents = await service.consents(db, lead_id)
    events = await timeline(db, lead_id, limit=TIMELINE_LIMIT)
    tool_ids = {e.tool_id for e in events if e.tool_id is not None}
    titles: dict[int, str] = {}
    if tool_ids:
        rows = await db.execute(select(Tool.id, Tool.title).where(Tool.id.in_(tool_ids)))
        titles = {tool_id: title for tool_id, title in rows}
    links = await _links(db, {e.link_id for e in events} | {lead.first_link_id, lead.last_link_id})
    owners = await _owners(db, lead.owner_id)
    return LeadDetail(
        id=lead.id,
        phone_masked=lead.phone_masked,
        status=lead.status,
        created=china_time(lead.created_at),
        last_seen=china_time(lead.last_seen_at),
        first_platform=lead.first_platform,
        first_source=_source(links.get(lead.first_link_id or 0), lead.first_src),
        last_source=_source(links.get(lead.last_link_id or 0), lead.last_src),
        needs=flatten(lead.needs or {}),
        notes=lead.notes or "",
        owner_id=lead.owner_id,
        owner_name=next((o.name for o in owners if o.id == lead.owner_id), ""),
        owners=owners,
        consents=[
            ConsentView(
                notice_version=c.notice_version,
                granted=china_time(c.granted_at),
                ip=c.ip,
                method=str((c.detail or {}).get("method", "")),
                withdrawn=china_time(c.withdrawn_at),
            )
            for c in consents
        ],
        timeline=[
            TimelineEntry(
                at=china_time(e.at),
                name=e.name,
                tool=titles.get(e.tool_id or 0, ""),
                platform=e.platform,
                source=_source(links.get(e.link_id or 0)),
                details=describe(e.props or {}),
            )
            for e in events
        ],
        timeline_truncated=len(events) >= TIMELINE_LIMIT,
    )


async def _links(db: AsyncSession, link_ids: Iterable[int | None]) -> dict[int, Any]:
    wanted = {i for i in link_ids if i is not None}
    if not wanted:
        return {}
    rows = await db.execute(
        select(TrackedLink.id, *SOURCE_COLUMNS)
        .join(Account, Account.id == TrackedLink.account_id)
        .where(TrackedLink.id.in_(wanted))
    )
    return {r.id: r for r in rows}


async def _owners(db: AsyncSession, current: int | None) -> list[OwnerOption]:
    """Who a lead can be assigned to: active sales staff (and whoever owns it now)."""
    assignable = (StaffUser.role == "sales") & StaffUser.is_active
    if current is not None:
        assignable = assignable | (StaffUser.id == current)
    query = select(StaffUser.id, StaffUser.display_name, StaffUser.username).where(assignable)
    rows = (await db.execute(query)).all()
    options = [OwnerOption(id=r.id, name=r.display_name or r.username) for r in rows]
    return sorted(options, key=lambda o: (o.name, o.id))


def flatten(value: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """A tool's answers as (label, value) pairs: nested objects become ``a · b`` labels."""
    if isinstance(value, dict) and depth < 3:
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            label = f"{prefix} · {key}" if prefix else str(key)
            pairs.extend(flatten(item, label, depth + 1))
        return pairs
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return [(prefix or "—", text[:500])]
