"""Voucher redemption: look a code up, redeem it once, undo it within a window.

The rules: a voucher is redeemed at most once, by a signed-in staff member at a named store,
while it has not expired and has not been voided. The redemption itself is one conditional
UPDATE (``status = 'issued' AND expires_at > now``), so two staff members redeeming the same
code at the same moment cannot both succeed. Every attempt is written to ``voucher_audit``,
refusals included: a refusal answers 4xx, which rolls the request's work back, so the refusal
marks its work to be kept (``keep``, app/db/uow.py) and the audit row is committed with it.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.core.clock import CHINA_TZ, china_time, now
from app.core.errors import DomainError, InvalidInput, RateLimited
from app.core.i18n import N_
from app.core.ratelimit import RateLimiter
from app.db.uow import keep
from app.events.schemas import EventContext, VoucherRedeemed, VoucherRedemptionUndone
from app.events.service import Tracker
from app.grabs import codes, held
from app.grabs.models import Grab, GrabClaim, VoucherAudit
from app.leads.models import Lead
from app.staff.models import StaffUser
from app.staff.schemas import PLAIN_TEXT, Staff
from app.tools.models import Tool
from app.vouchers.schemas import STORE_MAX, VoucherForm, VoucherView

# Look-ups and redemptions per staff member per minute: a counter works far below this, and a
# script trying codes is stopped long before 60 random bits could matter.
LOOKUPS_PER_MINUTE = 30
RECENT_LIMIT = 50
_CODE_MIN = codes.BODY_LENGTH + 1  # at least one prefix character
_CODE_MAX = 8 + codes.BODY_LENGTH  # Grab.voucher_prefix is at most 8 characters
_TYPED_MAX = 64  # spaces and dashes included
_PLAIN = re.compile(PLAIN_TEXT)


class VoucherRefused(DomainError, status=409):
    """A redemption or undo that was refused; ``code`` is the audit trail's reason."""


class NotACode(
    VoucherRefused,
    status=400,
    code="malformed",
    message=N_("This is not a voucher code. A code is letters and digits, like LK 7K3M 9QX2 PF4H."),
):
    """What was typed cannot be a voucher code (its length or characters)."""


class VoucherUnknown(
    VoucherRefused,
    status=404,
    code="unknown",
    message=N_("No voucher has this code. Check the code and try again."),
):
    """No voucher has this code."""


class AlreadyRedeemed(
    VoucherRefused,
    code="already_redeemed",
    message=N_("Already redeemed on %(at)s by %(by)s at %(store)s. It cannot be redeemed again."),
):
    """The voucher was redeemed already; the message says when, by whom, where."""


class VoucherExpired(
    VoucherRefused,
    code="expired",
    message=N_("This voucher expired on %(at)s and cannot be redeemed."),
):
    """The voucher is past its expiry."""


class VoucherVoid(
    VoucherRefused, code="void", message=N_("This voucher has been voided and cannot be redeemed.")
):
    """The voucher was voided."""


class NotRedeemed(
    VoucherRefused,
    code="not_redeemed",
    message=N_("This voucher is not redeemed, so there is nothing to undo."),
):
    """An undo of a voucher that is not redeemed."""


class UndoTooLate(
    VoucherRefused,
    code="undo_too_late",
    message=N_("A redemption can be undone only within %(minutes)d minutes. Ask an administrator."),
):
    """An undo once the undo window (``minutes``) has passed."""


class UndoNotAllowed(
    VoucherRefused,
    status=403,
    code="undo_not_allowed",
    message=N_(
        "Only the staff member who redeemed this voucher, or an administrator, can undo it."
    ),
):
    """An undo by staff who neither redeemed the voucher nor are administrators."""


class StoreMissing(InvalidInput, message=N_("Enter the store you are redeeming at first.")):
    """A redemption without the store it is made at."""


def clean_store(raw: str) -> str:
    """The store name as typed, trimmed; empty, over-long or control characters are refused."""
    store = raw.strip()
    if not store:
        raise StoreMissing(fields={"store": "missing"})
    if len(store) > STORE_MAX or not _PLAIN.match(store):
        raise InvalidInput(
            N_("The store name must be at most 64 characters of plain text."),
            fields={"store": "invalid"},
        )
    return store


def clean_code(raw: str) -> str:
    """What staff typed or scanned → the stored form, or a clear refusal."""
    # NFKC: a Chinese keyboard in full-width mode types ＬＫ７Ｋ… for LK7K….
    typed = unicodedata.normalize("NFKC", raw[: _TYPED_MAX * 4]).strip()
    if not typed:
        raise InvalidInput(N_("Enter a voucher code."), fields={"code": "missing"})
    code = codes.normalise(typed, max_length=_TYPED_MAX)
    if len(typed) > _TYPED_MAX or not (_CODE_MIN <= len(code) <= _CODE_MAX) or not code.isascii():
        raise NotACode(fields={"code": "invalid"})
    return code


async def check_rate(limiter: RateLimiter, staff: Staff) -> None:
    verdict = await limiter.hit(f"voucher:{staff.id}", LOOKUPS_PER_MINUTE, 60)
    if not verdict.allowed:
        raise RateLimited(
            N_("Too many voucher look-ups in a minute. Wait a moment and try again."),
            retry_after=verdict.retry_after,
        )


async def _audit(
    db: AsyncSession,
    action: str,
    staff: Staff,
    *,
    code: str,
    store: str,
    ip: str,
    claim_id: int | None = None,
    reason: str = "",
    at: dt.datetime | None = None,
) -> None:
    """One audit row; ``at`` is the instant of what it records (the redemption's, the undo's),
    so the row, the voucher and the timeline's event agree; a refusal's is now."""
    # Every value is bounded where it enters, within its column: the code by clean_code (or
    # the claim's own), the store by clean_store (or the claim's), the address by client_ip,
    # the reason is one of the refusals' codes.
    db.add(
        VoucherAudit(
            claim_id=claim_id,
            code=code,
            action=action,
            reason=reason,
            staff_id=staff.id if staff.via == "session" else None,
            store=store,
            ip=ip,
            at=at or now(),
        )
    )


async def _refuse(
    db: AsyncSession,
    staff: Staff,
    exc: VoucherRefused,
    *,
    code: str,
    store: str,
    ip: str,
    claim_id: int | None = None,
) -> VoucherRefused:
    """Audit the refusal, keep it although the answer is a refusal, and hand back the error
    to raise. (The route answers it rather than letting it through to the exception handler:
    a raised error rolls the request back, audit row included.)"""
    await _audit(
        db, "refused", staff, code=code, store=store, ip=ip, claim_id=claim_id, reason=exc.code
    )
    keep(db)
    return exc


def _views_query() -> Any:
    redeemer = aliased(StaffUser)
    return (
        select(
            GrabClaim,
            Tool.title,
            Grab.offer,
            Grab.voucher_where,
            Grab.voucher_prefix,
            Lead.phone_masked,
            redeemer.display_name,
            redeemer.username,
        )
        .join(Grab, Grab.id == GrabClaim.grab_id)
        .join(Tool, Tool.id == Grab.tool_id)
        .outerjoin(Lead, Lead.id == GrabClaim.lead_id)
        .outerjoin(redeemer, redeemer.id == GrabClaim.redeemed_by)
    )


def _view(row: Any, at: dt.datetime, undo: tuple[Staff, int] | None) -> VoucherView:
    """The voucher in ``row`` as seen at ``at``; ``undo`` is who looks and the undo window in
    minutes, or None where no undo is offered (the lead page)."""
    claim: GrabClaim = row[0]
    status = held.state(claim.status, claim.expires_at, at)
    return VoucherView(
        id=claim.id,
        code=claim.code,
        display_code=codes.display(claim.code, len(row.voucher_prefix or "") or None),
        title=row.title,
        offer=row.offer or "",
        where=row.voucher_where or "",
        phone_masked=row.phone_masked or "",
        lead_id=claim.lead_id,
        status=status,
        expires=china_time(claim.expires_at),
        redeemed_at=china_time(claim.redeemed_at),
        redeemed_by=(row.display_name or row.username or "") if claim.redeemed_by else "",
        redeemed_by_id=claim.redeemed_by,
        redeemed_store=claim.redeemed_store or "",
        can_undo=undo is not None and _undo_refusal(claim, *undo, at) is None,
    )


def _undo_refusal(
    claim: GrabClaim, staff: Staff, undo_minutes: int, at: dt.datetime
) -> VoucherRefused | None:
    if claim.status != "redeemed" or claim.redeemed_at is None:
        return NotRedeemed()
    if claim.redeemed_by != staff.id and staff.role != "admin":  # as the UPDATE below
        return UndoNotAllowed()
    if claim.redeemed_at + dt.timedelta(minutes=undo_minutes) <= at:
        return UndoTooLate(minutes=undo_minutes)
    return None


async def _view_by(
    db: AsyncSession, where: Any, viewer: Staff, undo_minutes: int
) -> VoucherView | None:
    row = (await db.execute(_views_query().where(where))).first()
    return None if row is None else _view(row, now(), (viewer, undo_minutes))


def _refusal_for(view: VoucherView) -> VoucherRefused | None:
    """Why ``view`` cannot be redeemed now, or None when it can."""
    if view.status == "redeemed":
        return AlreadyRedeemed(
            at=view.redeemed_at, by=view.redeemed_by or "—", store=view.redeemed_store or "—"
        )
    if view.status == "expired":
        return VoucherExpired(at=view.expires)
    if view.status == "void":
        return VoucherVoid()
    return None


async def lookup(
    db: AsyncSession,
    limiter: RateLimiter,
    staff: Staff,
    form: VoucherForm,
    ip: str,
    undo_minutes: int,
) -> VoucherView:
    """The voucher behind a typed or scanned code, to show before redeeming it. A code that
    cannot be redeemed (unknown, redeemed, expired, void) is refused here already, audited."""
    store = clean_store(form.store)
    code = clean_code(form.code)
    await check_rate(limiter, staff)
    view = await _view_by(db, GrabClaim.code == code, staff, undo_minutes)
    if view is None:
        raise await _refuse(db, staff, VoucherUnknown(), code=code, store=store, ip=ip)
    refusal = _refusal_for(view)
    if refusal is not None:
        raise await _refuse(db, staff, refusal, code=code, store=store, ip=ip, claim_id=view.id)
    return view


async def redeem(
    db: AsyncSession,
    limiter: RateLimiter,
    tracker: Tracker,
    staff: Staff,
    form: VoucherForm,
    ip: str,
    undo_minutes: int,
) -> VoucherView:
    """Redeem the voucher once, atomically; audited either way, and on the lead's timeline."""
    store = clean_store(form.store)
    code = clean_code(form.code)
    await check_rate(limiter, staff)
    at = now()
    # The UPDATE comes first in the transaction: on SQLite it takes the write lock before any
    # read, so a concurrent redemption waits for it instead of failing on a stale snapshot.
    won = (
        await db.execute(
            update(GrabClaim)
            .where(
                GrabClaim.code == code,
                GrabClaim.status == "issued",
                GrabClaim.expires_at > at,
            )
            .values(
                status="redeemed",
                redeemed_at=at,
                redeemed_by=staff.id if staff.via == "session" else None,
                redeemed_store=store,
            )
            .returning(GrabClaim.id)
            .execution_options(synchronize_session=False)
        )
    ).scalar()
    view = await _view_by(db, GrabClaim.code == code, staff, undo_minutes)
    if won is None or view is None:
        refusal = VoucherUnknown() if view is None else _refusal_for(view) or VoucherUnknown()
        claim_id = None if view is None else view.id
        raise await _refuse(db, staff, refusal, code=code, store=store, ip=ip, claim_id=claim_id)
    await _audit(db, "redeem", staff, code=code, store=store, ip=ip, claim_id=view.id, at=at)
    tracker.record(db, await _context(db, view.id), VoucherRedeemed(store=store), at)
    return view


async def undo(
    db: AsyncSession,
    tracker: Tracker,
    staff: Staff,
    claim_id: int,
    ip: str,
    undo_minutes: int,
    here: str,
) -> VoucherView:
    """Put a redeemed voucher back to issued: the redeemer or an admin, within the window.
    The audit names the store it was redeemed at (or, when it was not, ``here``)."""
    at = now()
    claim = await db.get(GrabClaim, claim_id, with_for_update=True)
    if claim is None:
        raise VoucherUnknown()
    store = claim.redeemed_store or here
    refusal = _undo_refusal(claim, staff, undo_minutes, at)
    if refusal is not None:
        raise await _refuse(
            db, staff, refusal, code=claim.code, store=store, ip=ip, claim_id=claim.id
        )
    # The same rules again in the UPDATE: a concurrent undo or redemption cannot slip between.
    rules = [
        GrabClaim.id == claim.id,
        GrabClaim.status == "redeemed",
        GrabClaim.redeemed_at > at - dt.timedelta(minutes=undo_minutes),
    ]
    if staff.role != "admin":
        rules.append(GrabClaim.redeemed_by == staff.id)
    undone = (
        await db.execute(
            update(GrabClaim)
            .where(*rules)
            .values(status="issued", redeemed_at=None, redeemed_by=None, redeemed_store="")
            .returning(GrabClaim.id)
            .execution_options(synchronize_session=False)
        )
    ).scalar()
    if undone is None:  # changed by someone else between the read and the write
        raise await _refuse(
            db, staff, NotRedeemed(), code=claim.code, store=store, ip=ip, claim_id=claim.id
        )
    await _audit(db, "undo", staff, code=claim.code, store=store, ip=ip, claim_id=claim.id, at=at)
    tracker.record(db, await _context(db, claim.id), VoucherRedemptionUndone(store=store), at)
    view = await _view_by(db, GrabClaim.id == claim.id, staff, undo_minutes)
    assert view is not None
    return view


async def _context(db: AsyncSession, claim_id: int) -> EventContext:
    """The voucher's lead, visitor and grab tool, so the event lands on the lead's timeline."""
    row = (
        await db.execute(
            select(GrabClaim.lead_id, GrabClaim.visitor_id, Grab.tool_id, Tool.current_version)
            .join(Grab, Grab.id == GrabClaim.grab_id)
            .join(Tool, Tool.id == Grab.tool_id)
            .where(GrabClaim.id == claim_id)
        )
    ).one()
    return EventContext(
        lead_id=row.lead_id,
        visitor_id=row.visitor_id,
        tool_id=row.tool_id,
        tool_version=row.current_version,
    )


def _china_day_start(at: dt.datetime) -> dt.datetime:
    local = at.astimezone(CHINA_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)


async def recent(
    db: AsyncSession, staff: Staff, store: str, undo_minutes: int
) -> list[VoucherView]:
    """Today's redemptions (China time) at ``store``, newest first; without a store, the
    staff member's own."""
    at = now()
    query = _views_query().where(
        GrabClaim.status == "redeemed", GrabClaim.redeemed_at >= _china_day_start(at)
    )
    if store:
        query = query.where(GrabClaim.redeemed_store == store)
    else:
        query = query.where(GrabClaim.redeemed_by == staff.id)
    rows = await db.execute(
        query.order_by(GrabClaim.redeemed_at.desc(), GrabClaim.id.desc()).limit(RECENT_LIMIT)
    )
    return [_view(row, at, (staff, undo_minutes)) for row in rows]


async def for_lead(db: AsyncSession, lead_id: int) -> list[VoucherView]:
    """The lead's vouchers, newest first, for the lead page."""
    at = now()
    rows = await db.execute(
        _views_query()
        .where(GrabClaim.lead_id == lead_id)
        .order_by(GrabClaim.claimed_at.desc(), GrabClaim.id.desc())
        .limit(RECENT_LIMIT)
    )
    return [_view(row, at, None) for row in rows]
