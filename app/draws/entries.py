"""Entering a draw: who is entering (an authorised visitor), whether they may, and the entry
itself with its referral chance — written in one transaction of its own, the entry's INSERT
first and conditional on the window being open, so a close never misses an entry it raced.

Referral chances (好友助力): an entry made through a friend's share code gives the friend one
chance more when the phone is *new* — it entered this draw for the first time, it is not the
friend's own phone, and leadkit first heard of it (its lead was made) after the friend entered
— up to the draw's cap. Anything else enters normally and says why nothing was counted.

The entrant count is the draw's tally (app/draws/models.py ``draw_tally``), raised in the
entry's transaction: the count an answer shows is a read of a few rows, whatever the draw's size.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from dataclasses import dataclass

import msgspec
from sqlalchemy import Select, exists, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.core.sql import upsert_insert
from app.draws.definition import DrawInfo, normalise_passphrase, takes_entries
from app.draws.models import Draw, DrawEntry, draw_tally
from app.draws.schemas import EnterAnswer, EnterBody
from app.events.models import FunnelEvent
from app.events.schemas import DrawEntered
from app.events.service import Tracker
from app.grabs.codes import ALPHABET
from app.grabs.store.claims import tap_context
from app.leads.models import Lead
from app.tools.models import Submission, Tool
from app.visitors.models import Visitor

CODE_LENGTH = 10
TALLY_SLOTS = 8  # the count's rows per draw (models.py draw_tally)
# A tool counts as completed by a lead once one of these is on record for it.
COMPLETED = ("result_shown", "download", "grab_won", "booking_made")


class Prize(msgspec.Struct, frozen=True, kw_only=True):
    tier: int
    name: str
    status: str  # won | claimed | expired | redrawn
    claim_by: dt.datetime | None
    voucher_code: str = ""


class MyEntry(msgspec.Struct, frozen=True, kw_only=True):
    """What the visitor's own page shows: their entry and what it won."""

    code: str
    chances: int
    prizes: list[Prize]


@dataclass(frozen=True, slots=True)
class Entrant:
    """The authorised visitor behind a visitor cookie."""

    visitor_id: int
    platform: str
    link_id: int | None
    lead_id: int
    phone_hash: str
    phone_masked: str
    lead_created: dt.datetime | None


async def entrant(db: AsyncSession, public_id: str | None) -> Entrant | None:
    if not public_id:
        return None
    row = (
        await db.execute(
            select(
                Visitor.id,
                Visitor.platform,
                Visitor.last_link_id,
                Lead.id,
                Lead.phone_hash,
                Lead.phone_masked,
                Lead.created_at,
            )
            .join(Lead, Lead.id == Visitor.lead_id)
            .where(Visitor.public_id == public_id)
        )
    ).first()
    return None if row is None else Entrant(*row)


def masked(text: str) -> str:
    """The masked phone as the canonical list takes it (printable ASCII, no spaces)."""
    clean = "".join(ch for ch in text if "!" <= ch <= "~")[:32]
    return clean or "****"


async def entry_of(db: AsyncSession, draw_id: int, phone_hash: str) -> DrawEntry | None:
    return await db.scalar(
        select(DrawEntry).where(DrawEntry.draw_id == draw_id, DrawEntry.phone_hash == phone_hash)
    )


def count_query(draw_id: int) -> Select[tuple[int]]:
    """The draw's entrant count: its tally's slots added up."""
    return select(func.coalesce(func.sum(draw_tally.c.entrants), 0)).where(
        draw_tally.c.draw_id == draw_id
    )


async def count(db: AsyncSession | AsyncConnection, draw_id: int) -> int:
    return int(await db.scalar(count_query(draw_id)) or 0)


async def raise_tally(db: AsyncSession | AsyncConnection, draw_id: int, entered: int) -> None:
    """``entered`` more entrants on the draw's tally, in the caller's transaction (the one that
    wrote the entries): one slot, picked at random, so concurrent writers seldom share a row."""
    dialect = db.get_bind().dialect if isinstance(db, AsyncSession) else db.dialect
    insert = upsert_insert(dialect)(draw_tally)
    await db.execute(
        insert.values(
            draw_id=draw_id, slot=random.randrange(TALLY_SLOTS), entrants=entered
        ).on_conflict_do_update(
            index_elements=["draw_id", "slot"],
            set_={"entrants": draw_tally.c.entrants + insert.excluded.entrants},
        )
    )


async def ineligible(db: AsyncSession, draw: DrawInfo, who: Entrant, body: EnterBody) -> str | None:
    """Why ``who`` may not enter (a NotEligible reason), or None."""
    if draw.asks_passphrase:
        stored = await db.scalar(select(Draw.passphrase).where(Draw.id == draw.id))
        if normalise_passphrase(body.answer) != stored:
            return "wrong_passphrase"
    if draw.requires_tool:
        tool = select(Tool.id).where(Tool.slug == draw.requires_tool).scalar_subquery()
        done = await db.scalar(
            select(
                exists().where(Submission.tool_id == tool, Submission.lead_id == who.lead_id)
                | exists().where(
                    FunnelEvent.tool_id == tool,
                    FunnelEvent.lead_id == who.lead_id,
                    FunnelEvent.name.in_(COMPLETED),
                )
            )
        )
        if not done:
            return "tool_not_completed"
    return None


async def referrer(
    db: AsyncSession, draw: DrawInfo, who: Entrant, code: str
) -> tuple[int | None, str]:
    """The entry a share code names, when it may earn a chance, and what became of the code."""
    if not code:
        return None, ""
    if not draw.referrals:
        return None, "off"
    row = (
        await db.execute(
            select(DrawEntry.id, DrawEntry.phone_hash, DrawEntry.created_at).where(
                DrawEntry.draw_id == draw.id, DrawEntry.code == code.upper()
            )
        )
    ).first()
    if row is None:
        return None, "unknown_code"
    if row.phone_hash == who.phone_hash:
        return None, "own_code"
    if who.lead_created is not None and who.lead_created < row.created_at:
        return row.id, "not_new"  # referred (staff see it), but no chance
    return row.id, "counted"


def new_code() -> str:
    """A new entry's share code."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


async def write_entry(
    sessionmaker: async_sessionmaker,
    tracker: Tracker,
    draw: DrawInfo,
    who: Entrant,
    ref: tuple[int | None, str],
    at: dt.datetime,
) -> EnterAnswer:
    """The entry, in a transaction of its own: INSERT … SELECT where the draw takes entries
    (``FOR SHARE`` on PostgreSQL: a close waits for it), nothing on a second entry of the
    phone; then the referral chance and the ``draw_entered`` event with it."""
    referred_by, referral = ref
    code = new_code()
    async with sessionmaker() as db, db.begin():
        insert = upsert_insert(db.bind)
        columns = {
            "draw_id": draw.id,
            "phone_hash": who.phone_hash,
            "phone_masked": masked(who.phone_masked or ""),
            "lead_id": who.lead_id,
            "visitor_id": who.visitor_id,
            "code": code,
            "referred_by": referred_by,
            "chances": 1,
            "created_at": at,
        }
        table = DrawEntry.__table__
        source = (
            select(*(literal(value, table.c[name].type) for name, value in columns.items()))
            .select_from(Draw)
            .where(Draw.id == draw.id, takes_entries(at))
            .with_for_update(read=True)
        )
        new_id = (
            await db.execute(
                insert(DrawEntry)
                .from_select(list(columns), source)
                .on_conflict_do_nothing(index_elements=["draw_id", "phone_hash"])
                .returning(DrawEntry.id)
            )
        ).scalar()
        if new_id is None:
            earlier = await entry_of(db, draw.id, who.phone_hash)
            if earlier is None:
                return EnterAnswer(result="not_open", entrants=await count(db, draw.id))
            return answer_of("already_entered", draw, earlier, await count(db, draw.id))
        # The tally before the referral's credit: every entry locks the slot, then the
        # referrer's row, in that order (no two entries wait for each other in a circle).
        await raise_tally(db, draw.id, 1)
        if referral == "counted" and referred_by is not None:
            referral = await _credit(db, draw, referred_by)
        tracker.record(db, tap_context(draw, who), DrawEntered(referral=referral), at)
        return EnterAnswer(  # a new entry: its code, one chance (no read of the row)
            result="entered",
            entrants=await count(db, draw.id),
            code=code if draw.referrals else None,
            chances=1,
        )


async def _credit(db: AsyncSession, draw: DrawInfo, referrer: int) -> str:
    """One chance more for the referrer's entry, up to the draw's cap: "counted", or
    "cap_reached" when the entry has them all already."""
    gained = (
        await db.execute(
            update(DrawEntry)
            .where(DrawEntry.id == referrer, DrawEntry.chances < 1 + draw.referral_cap)
            .values(chances=DrawEntry.chances + 1)
            .returning(DrawEntry.id)
            .execution_options(synchronize_session=False)
        )
    ).scalar()
    return "counted" if gained is not None else "cap_reached"


def answer_of(result: str, draw: DrawInfo, entry: DrawEntry, entrants: int) -> EnterAnswer:
    return EnterAnswer(
        result=result,  # type: ignore[arg-type]
        entrants=entrants,
        code=entry.code if draw.referrals else None,
        chances=entry.chances,
    )
