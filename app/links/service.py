"""Accounts (品牌号/员工号/合作号/投流), their tracked links (渠道码) and the links' QR codes."""

from __future__ import annotations

import io
import re
import secrets
import unicodedata
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import segno
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, InvalidInput
from app.core.i18n import N_
from app.core.sql import get_or_404
from app.links.models import Account, TrackedLink
from app.links.schemas import (
    ACCOUNT_CAPS,
    CODE_PATTERN,
    AccountCreate,
    LinkCreate,
    LinkFigures,
    LinkFilter,
)
from app.staff.audit import audit
from app.staff.models import StaffUser
from app.staff.schemas import Staff
from app.tools.models import Tool

# No 0/o, 1/l/i: codes get read aloud and typed from posters.
CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
CODE_LENGTH = 8
LIST_LIMIT = 500
_CODE_RE = re.compile(CODE_PATTERN)


def generate_code() -> str:
    """A random 8-character code (31^8 ≈ 8.5e11 possibilities)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def clean_name(name: str) -> str:
    """Trimmed; control characters (newlines, NUL, bidi overrides) are not part of a name."""
    return "".join(ch for ch in name.strip() if unicodedata.category(ch)[0] != "C")


def code_problem(code: str) -> str | None:
    """Why ``code`` cannot be a link code (a msgid), or None when it can."""
    if not _CODE_RE.match(code):
        return N_("Codes have 3 to 32 characters: letters, digits, - and _.")
    return None


async def find_code(db: AsyncSession, code: str) -> TrackedLink | None:
    """The link using ``code``, compared without case so Live01 and live01 never coexist."""
    return (
        await db.execute(select(TrackedLink).where(func.lower(TrackedLink.code) == code.lower()))
    ).scalar()


async def account_counts(db: AsyncSession) -> dict[str, int]:
    rows = await db.execute(select(Account.kind, func.count()).group_by(Account.kind))
    return {kind: int(n) for kind, n in rows.all()}


async def list_accounts(db: AsyncSession) -> list[tuple[Account, str, int]]:
    """Every account with its owner's name and its number of links, by kind then name."""
    links = (
        select(TrackedLink.account_id, func.count().label("n"))
        .group_by(TrackedLink.account_id)
        .subquery()
    )
    rows = await db.execute(
        select(Account, StaffUser.display_name, StaffUser.username, func.coalesce(links.c.n, 0))
        .outerjoin(links, links.c.account_id == Account.id)
        .outerjoin(StaffUser, StaffUser.id == Account.owner_id)
    )
    order = {kind: i for i, kind in enumerate(ACCOUNT_CAPS)}
    result = [
        (account, display or username or "", int(n)) for account, display, username, n in rows.all()
    ]
    return sorted(result, key=lambda row: (order.get(row[0].kind, len(order)), row[0].name))


async def list_links(db: AsyncSession, where: LinkFilter) -> list[TrackedLink]:
    """Links matching the filter, newest first, at most LIST_LIMIT."""
    query = select(TrackedLink).join(Account, Account.id == TrackedLink.account_id)
    if where.kind:
        query = query.where(Account.kind == where.kind)
    if where.channel:
        query = query.where(TrackedLink.channel == where.channel)
    if where.account_id:
        query = query.where(TrackedLink.account_id == where.account_id)
    query = query.order_by(TrackedLink.id.desc()).limit(LIST_LIMIT)
    return list((await db.execute(query)).scalars())


async def owners(db: AsyncSession) -> list[StaffUser]:
    """Staff members an account can belong to: the active ones."""
    query = select(StaffUser).where(StaffUser.is_active.is_(True)).order_by(StaffUser.username)
    return list((await db.execute(query)).scalars())


async def tool_slugs(db: AsyncSession) -> list[str]:
    return list((await db.execute(select(Tool.slug).order_by(Tool.slug))).scalars())


async def tool_titles(db: AsyncSession) -> dict[str, str]:
    """Every tool a link can open, slug → title, in slug order: people pick and read tools by
    their titles; the slug stays the value a link stores."""
    rows = await db.execute(select(Tool.slug, Tool.title).order_by(Tool.slug))
    return {slug: title for slug, title in rows.all()}


@runtime_checkable
class LinkCounter(Protocol):
    """Counts what links brought. Leads and funnel events belong to features above this one,
    so the count is given to the links pages as an app part (app/analytics/links.py)."""

    async def figures(self, db: AsyncSession, link_ids: Sequence[int]) -> dict[int, LinkFigures]:
        """Each link's figures (links that brought nothing may be missing), in one query."""
        ...


async def create_account(
    db: AsyncSession, actor: Staff | None, data: AccountCreate, ip: str = ""
) -> Account:
    """Add an account. Names are unique per kind; each kind has a cap (ACCOUNT_CAPS)."""
    name = clean_name(data.name)
    if not name:
        raise InvalidInput(N_("The account needs a name."), fields={"name": "required"})
    owner_id = int(data.owner_id) if data.owner_id else None
    if owner_id is not None and await db.get(StaffUser, owner_id) is None:
        raise InvalidInput(N_("No such staff member."), fields={"owner_id": "unknown"})
    taken = await db.scalar(
        select(Account.id).where(Account.kind == data.kind, Account.name == name)
    )
    if taken is not None:
        raise Conflict(N_("An account of this kind with this name already exists."))
    have = (await account_counts(db)).get(data.kind, 0)
    if have >= ACCOUNT_CAPS[data.kind]:
        raise Conflict(
            N_("At most %(cap)s accounts of this kind."),
            fields={"kind": "cap"},
            cap=ACCOUNT_CAPS[data.kind],
        )
    account = Account(kind=data.kind, name=name, platform=data.platform, owner_id=owner_id)
    db.add(account)
    try:
        await db.flush()
    except IntegrityError as exc:  # a concurrent create won the race
        raise Conflict(N_("An account of this kind with this name already exists.")) from exc
    await audit(db, actor, "account.create", name, {"kind": data.kind, "id": account.id}, ip)
    return account


async def create_link(
    db: AsyncSession, actor: Staff | None, data: LinkCreate, ip: str = ""
) -> TrackedLink:
    """Add a tracked link; without a code, a random one is generated."""
    account = await db.get(Account, data.account_id)
    if account is None:
        raise InvalidInput(N_("No such account."), fields={"account_id": "unknown"})
    if await db.scalar(select(Tool.id).where(Tool.slug == data.target_slug)) is None:
        raise InvalidInput(N_("No such tool."), fields={"target_slug": "unknown"})
    code = data.code.strip()
    if code:
        problem = code_problem(code)
        if problem:
            raise InvalidInput(problem, fields={"code": "format"})
        if await find_code(db, code) is not None:
            raise Conflict(
                N_("This code is already used by another link."), fields={"code": "taken"}
            )
    else:
        code = generate_code()
        while await find_code(db, code) is not None:
            code = generate_code()
    link = TrackedLink(
        code=code,
        account_id=account.id,
        channel=data.channel,
        campaign=clean_name(data.campaign),
        target_slug=data.target_slug,
        is_active=True,
    )
    db.add(link)
    try:
        await db.flush()
    except IntegrityError as exc:
        raise Conflict(N_("This code is already used by another link.")) from exc
    await audit(db, actor, "link.create", code, {"account": account.id, "id": link.id}, ip)
    return link


async def get_link(db: AsyncSession, link_id: int) -> TrackedLink:
    return await get_or_404(db, TrackedLink, link_id, N_("No such link."))


async def set_link_active(
    db: AsyncSession, actor: Staff | None, link_id: int, active: bool, ip: str = ""
) -> TrackedLink:
    """Switch a link on or off; an inactive code no longer redirects."""
    link = await get_link(db, link_id)
    if link.is_active != active:
        link.is_active = active
        action = "link.activate" if active else "link.deactivate"
        await audit(db, actor, action, link.code, {"id": link.id}, ip)
    return link


def public_url(base_url: str, code: str) -> str:
    """What a visitor opens: ``{base}/s/{code}``."""
    return f"{base_url.rstrip('/')}/s/{code}"


def qr_svg(url: str) -> bytes:
    """The QR code for ``url`` as SVG (a full QR code, never a Micro QR)."""
    buffer = io.BytesIO()
    segno.make_qr(url, error="m").save(buffer, kind="svg", scale=8, border=2, title=url)
    return buffer.getvalue()


def qr_png(url: str) -> bytes:
    """The QR code for ``url`` as PNG, 8 pixels a module with a 2-module margin."""
    buffer = io.BytesIO()
    segno.make_qr(url, error="m").save(buffer, kind="png", scale=8, border=2)
    return buffer.getvalue()


async def find_active(db: AsyncSession, code: str) -> TrackedLink | None:
    """The live tracked link with this code, or None (unknown, too long or switched off)."""
    if not code or len(code) > 32:
        return None
    link = (await db.execute(select(TrackedLink).where(TrackedLink.code == code))).scalar()
    return link if link is not None and link.is_active else None
