"""Deleting a person's data (PIPL art. 47): every place they appear, on every backend.

``erase`` works in the request's transaction, so the main database changes all together or not
at all:

- the lead (the number's ciphertext, lookup hash and masked form, needs, notes) and its
  consents are deleted, and so are the tool answers (submissions) of the lead and its browsers
  and its bookings (slot and note);
- the visitors (browsers) linked to the lead, and the browser that asked, are deleted: cookie
  id, user agent, attribution;
- their funnel events stay, for the business's figures, anonymised: no lead, no props, and
  each visitor id replaced by a random negative stand-in that nothing else holds, so a funnel
  still counts the person once per step while nothing leads back to them;
- their grab claims keep their units (won + remaining = initial, ``leadkit grabs check``) as
  tombstones: the phone hash becomes ``deleted:`` + the voucher code, the lead, visitor and
  idempotency key go; an issued voucher becomes void, a redeemed one keeps its redemption
  (when, at which store, by which staff member), which is the business's accounting;
- the staff audit trail keeps what staff did (a number revealed, a status changed) and when,
  with the lead named ``lead:deleted``; one ``privacy.delete`` entry records that a deletion
  happened, with counts and nothing else.

``forget_elsewhere`` then clears what lives outside that transaction, once it has committed:
one-time codes and the counters keyed by the phone's hash or the visitors (the side store or
Redis), the Redis grab winners and idempotency answers, this process's claimant cache and the
cached PDF reports. It is idempotent; when a step fails, the person re-verifying their number at
/privacy/manage ("we hold no data") runs it again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import case, delete, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bookings.models import Booking
from app.core.i18n import LOCALES
from app.core.models import AuditEntry
from app.core.ratelimit import RateLimiter
from app.events.models import FunnelEvent
from app.events.service import Tracker
from app.gate.service import Gate
from app.grabs.models import GrabClaim
from app.grabs.service import Grabs
from app.grabs.store import TOMBSTONE
from app.leads.models import Consent, Lead
from app.reports.service import ReportRenderer, report_cache_key
from app.tools.models import Submission, Tool
from app.visitors.models import Visitor

log = logging.getLogger("leadkit.privacy")
DELETED_LEAD = "lead:deleted"


@dataclass(frozen=True, slots=True)
class Erasure:
    """What is left to forget outside the main database once the deletion has committed."""

    phone_hash: str
    lead_id: int | None = None
    visitor_ids: tuple[int, ...] = ()
    public_ids: tuple[str, ...] = ()
    report_keys: tuple[str, ...] = ()


def _stand_in() -> int:
    # Negative: database ids are positive, so a stand-in never names a real visitor.
    return -(secrets.randbelow(2**62) + 1)


async def erase(db: AsyncSession, tracker: Tracker, lead: Lead, asker: Visitor) -> Erasure:
    """Delete or anonymise everything of ``lead`` in the main database (see the module), in
    the caller's transaction; ``asker`` is the browser that asked, deleted with the others
    unless it belongs to another lead. Commits nothing."""
    lead_id, phone_hash = lead.id, lead.phone_hash
    # Lock the lead first: a claim or a claim writer inserting a row that names it waits for
    # this transaction, then fails on its foreign key instead of leaving the person behind.
    await db.execute(select(Lead.id).where(Lead.id == lead_id).with_for_update())
    visitors = dict(
        (
            await db.execute(
                select(Visitor.id, Visitor.public_id).where(Visitor.lead_id == lead_id)
            )
        ).all()
    )
    if asker.id is not None and asker.lead_id in (None, lead_id):
        visitors[asker.id] = asker.public_id
    ids = list(visitors)
    stand_ins = {visitor_id: _stand_in() for visitor_id in ids}
    # Events still buffered in this process get the same treatment before the rows do.
    await tracker.forget(lead_id, stand_ins)
    counts: dict[str, int] = {}
    if ids:
        result = await db.execute(
            update(FunnelEvent)
            .where(FunnelEvent.visitor_id.in_(ids))
            .values(
                visitor_id=case(stand_ins, value=FunnelEvent.visitor_id),
                lead_id=None,
                props={},
            )
            .execution_options(synchronize_session=False)
        )
        counts["events"] = _rows(result)
    result = await db.execute(
        update(FunnelEvent)
        .where(FunnelEvent.lead_id == lead_id)
        .values(lead_id=None, props={})
        .execution_options(synchronize_session=False)
    )
    counts["events"] = counts.get("events", 0) + _rows(result)
    mine = or_(Submission.lead_id == lead_id, Submission.visitor_id.in_(ids))
    report_keys = await _report_keys(db, lead, mine)
    result = await db.execute(delete(Submission).where(mine))
    counts["answers"] = _rows(result)
    result = await db.execute(
        update(GrabClaim)
        .where(or_(GrabClaim.lead_id == lead_id, GrabClaim.phone_hash == phone_hash))
        .values(
            phone_hash=literal(TOMBSTONE) + GrabClaim.code,
            n=1,
            lead_id=None,
            visitor_id=None,
            idempotency_key=None,
            status=case((GrabClaim.status == "issued", "void"), else_=GrabClaim.status),
        )
        .execution_options(synchronize_session=False)
    )
    counts["claims"] = _rows(result)
    await db.execute(
        update(AuditEntry)
        .where(AuditEntry.target == f"lead:{lead_id}")
        .values(target=DELETED_LEAD)
        .execution_options(synchronize_session=False)
    )
    # Explicitly, not left to the foreign key: SQLite enforces ON DELETE only when told to.
    result = await db.execute(delete(Booking).where(Booking.lead_id == lead_id))
    counts["bookings"] = _rows(result)
    await db.execute(delete(Consent).where(Consent.lead_id == lead_id))
    if ids:
        await db.execute(delete(Visitor).where(Visitor.id.in_(ids)))
    counts["visitors"] = len(ids)
    await db.delete(lead)
    db.add(
        AuditEntry(
            actor_id=None,
            actor_name="visitor",
            action="privacy.delete",
            target=DELETED_LEAD,
            detail=counts,
            ip="",
        )
    )
    await db.flush()
    return Erasure(
        phone_hash=phone_hash,
        lead_id=lead_id,
        visitor_ids=tuple(ids),
        public_ids=tuple(visitors.values()),
        report_keys=report_keys,
    )


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def _report_keys(db: AsyncSession, lead: Lead, mine: object) -> tuple[str, ...]:
    """The cache keys of every PDF report the person's answers could have produced (the report
    is watermarked with their masked number and named after their answers)."""
    rows = await db.execute(
        select(Tool.slug, Submission.tool_version, Submission.inputs)
        .join(Tool, Tool.id == Submission.tool_id)
        .where(mine)  # type: ignore[arg-type]
    )
    return tuple(
        report_cache_key(
            tool=slug, version=version, inputs=inputs, watermark=lead.phone_masked, locale=locale
        )
        for slug, version, inputs in rows
        for locale in LOCALES
    )


async def forget_elsewhere(
    erasure: Erasure,
    *,
    sessionmaker: async_sessionmaker,
    gate: Gate,
    grabs: Grabs,
    limiter: RateLimiter,
    reports: ReportRenderer,
) -> bool:
    """After the deletion committed: forget the person in every store outside the main
    database (see the module). Each step runs even when another fails; returns whether all
    did. Does nothing while the number is a lead (the deletion did not commit, or the person
    came back), so running it again is always safe."""
    async with sessionmaker() as db:
        lead = await db.scalar(select(Lead.id).where(Lead.phone_hash == erasure.phone_hash))
    if lead is not None:
        log.warning("privacy: the number is still a lead; nothing forgotten outside the database")
        return False
    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("one-time codes and SMS counters", lambda: gate.forget(erasure.phone_hash)),
        (
            "grab winners, answers and counters",
            lambda: grabs.forget(erasure.phone_hash, erasure.lead_id, erasure.visitor_ids),
        ),
        ("event counters", lambda: _forget_event_counters(limiter, erasure.public_ids)),
        ("cached reports", lambda: asyncio.to_thread(reports.forget, erasure.report_keys)),
    ]
    done = True
    for name, step in steps:
        try:
            await step()
        except Exception:
            done = False
            log.exception(
                "privacy: could not forget the %s; the person re-verifying their number at "
                "/privacy/manage runs this again",
                name,
            )
    return done


async def _forget_event_counters(limiter: RateLimiter, public_ids: tuple[str, ...]) -> None:
    # The events endpoint (app/events/routes.py) counts per visitor cookie id.
    for public_id in public_ids:
        await limiter.reset(f"events:v:{public_id}")
