"""The host's side of a draw, in the request's transaction: close (freeze the entrant list),
draw a tier, redraw unclaimed winners from the reserves; the winner's claim; the proof bundle.

Every host action starts with ``take_turn`` (app/draws/definition.py), an UPDATE of the draw's
row: actions on one draw run one after the other, so a double tap on "draw" draws once — the
second tap finds the tier drawn and answers the same winners. The whole draw is a function of
the seed, the frozen list and the drand round (docs/draws.md); drawing tier N computes it and
stores tier N's winners and reserves.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import N_
from app.draws import notify, prizes
from app.draws.definition import DrawInfo, info_of, load_draw, state_of, take_turn
from app.draws.drand import DrandClient, DrandError, DrandNotYet, DrandRound, time_of
from app.draws.entrants import Entry, FrozenList, freeze
from app.draws.entries import Entrant
from app.draws.fairness import TierResult, draw
from app.draws.models import Draw, DrawEntry, DrawWinner
from app.draws.proof import Proof, prove
from app.draws.schemas import ClaimAnswer, ClaimBody, DrawnTier
from app.events.schemas import DrawClaimed, DrawWon, EventContext
from app.events.service import Tracker
from app.grabs.store.claims import tap_context

log = logging.getLogger("leadkit.draws")
# The round fixed at the close comes within one period (quicknet: 3 s): a tap right after the
# close (or the first after the schedule's end, which fixes the round) waits this long for it.
ROUND_WAIT_SECONDS = 5.0


class NotClosed(Conflict, code="not_closed", message=N_("Close the entries before drawing.")):
    """The host asked to draw while entries are open (or before the round is known)."""


class AlreadyClosed(
    Conflict,
    code="already_closed",
    message=N_("The entries are closed and frozen; the draw cannot open again."),
):
    """The host asked to open a draw whose entries are closed and frozen."""


class NoSuchTier(InvalidInput, message=N_("This draw has no tier %(tier)s.")):
    """The host named a tier the draw does not have."""


class NotDrawn(
    Conflict, code="not_drawn", message=N_("The proof is published once every tier is drawn.")
):
    """The proof was asked for before every tier was drawn."""


class ListChanged(
    Conflict,
    code="entrants_changed",
    message=N_("The entries no longer match the list frozen at the close."),
):
    """The entrants no longer match the hash frozen at the close: no drawing."""


class DrandFailed(
    Conflict,
    code="drand_failed",
    message=N_(
        "The public randomness (drand round %(round)s) could not be fetched and verified: "
        "nothing was drawn. Tap draw again in a few seconds."
    ),
):
    """The draw's drand round is not produced yet, the beacon is unreachable, or what it
    sent does not verify (``fields["drand"]`` says which): nothing is drawn; the round stays
    the one published at the close."""


class NotAWinner(NotFound, message=N_("This phone has no prize to claim in this draw.")):
    """A claim from a phone that won nothing in this draw."""


class ClaimTooLate(
    Conflict, code="claim_too_late", message=N_("The time to claim this prize has passed.")
):
    """A winner claims after the time to claim each of their prizes has passed."""


async def frozen_list(db: AsyncSession, draw_id: int) -> FrozenList:
    rows = await db.execute(
        select(DrawEntry.id, DrawEntry.phone_hash, DrawEntry.phone_masked, DrawEntry.chances)
        .where(DrawEntry.draw_id == draw_id)
        .order_by(DrawEntry.id)
    )
    return freeze(Entry(id=r[0], phone_key=r[1], phone=r[2], chances=r[3]) for r in rows)


async def set_mode(db: AsyncSession, slug: str, mode: str) -> DrawInfo:
    """The host's "open now" (or back to the schedule); a frozen draw never reopens."""
    tool, row = await take_turn(db, slug)
    if row.closed_at is not None:
        raise AlreadyClosed()
    row.mode = mode
    await db.flush()
    return info_of(tool, row)


async def close(
    db: AsyncSession, slug: str, at: dt.datetime, drand: DrandClient | None
) -> DrawInfo:
    """Close the entries now and freeze the list (idempotent)."""
    tool, row = await take_turn(db, slug)
    await _freeze(db, row, at, drand)
    return info_of(tool, row)


async def _freeze(db: AsyncSession, row: Draw, at: dt.datetime, drand: DrandClient | None) -> None:
    if row.closed_at is not None:
        return
    frozen = await frozen_list(db, row.id)
    row.closed_at, row.mode = at, "closed"
    row.entrants_hash, row.entrants_count = frozen.hash, frozen.count
    if row.use_drand and drand is not None:
        # The first round produced strictly after the close: nobody can know it at the close.
        try:
            row.drand_round = await drand.round_after(at.timestamp())
        except DrandError as exc:  # no beacon at the close: commit-reveal alone (docs)
            log.warning("draw %s closed without a drand round: %s", row.id, exc)
    await db.flush()


async def _randomness(row: Draw, drand: DrandClient | None) -> DrandRound | None:
    if not row.use_drand:
        return None
    if row.drand is None:
        if row.drand_round is None:  # the close could fix no round: commit-reveal alone
            return None
        if drand is None:
            raise NotClosed()
        try:
            row.drand = msgspec.to_builtins(await _fetch(drand, row.drand_round))
        except DrandError as exc:
            log.warning("draw %s: drand round %s refused: %s", row.id, row.drand_round, exc)
            raise DrandFailed(fields={"drand": exc.reason}, round=row.drand_round) from exc
    return msgspec.convert(row.drand, DrandRound)


async def _fetch(drand: DrandClient, round_number: int) -> DrandRound:
    """The verified round; one due within a period (at most ROUND_WAIT_SECONDS) is waited for."""
    try:
        return await drand.fetch(round_number)
    except DrandNotYet:
        info = await drand.info()
        wait = time_of(info, round_number) - time.time()
        if wait > min(info.period, ROUND_WAIT_SECONDS):
            raise
        await asyncio.sleep(max(wait, 0.0) + 0.05)
        return await drand.fetch(round_number)


async def _computed(
    db: AsyncSession, row: Draw, info: DrawInfo, drand: DrandClient | None
) -> tuple[FrozenList, DrandRound | None, tuple[TierResult, ...]]:
    frozen = await frozen_list(db, row.id)
    if frozen.hash != row.entrants_hash:
        raise ListChanged()
    beacon = await _randomness(row, drand)
    randomness = bytes.fromhex(beacon.randomness) if beacon else None
    results = draw(
        row.seed,
        frozen,
        info.rules,
        one_win_per_phone=row.one_win_per_phone,
        randomness=randomness,
    )
    return frozen, beacon, results


async def draw_tier(
    db: AsyncSession,
    tracker: Tracker,
    slug: str,
    tier: int,
    at: dt.datetime,
    drand: DrandClient | None,
    notice: notify.Notice | None = None,
) -> tuple[DrawInfo, DrawnTier]:
    """Draw tier ``tier`` (from 1): its winners and reserves stored, each winner told (event,
    SMS). A drawn tier answers its winners again (``replayed``)."""
    tool, row = await take_turn(db, slug)
    if not 1 <= tier <= len(row.tiers):
        raise NoSuchTier(fields={"tier": "no such tier"}, tier=tier)
    info = info_of(tool, row)
    if tier in info.drawn_tiers:
        return info, await drawn(db, info, tier, replayed=True)
    if row.closed_at is None:
        if state_of(info, at) != "closed":
            raise NotClosed()
        await _freeze(db, row, at, drand)  # the schedule ended: freeze now
    _, _, results = await _computed(db, row, info_of(tool, row), drand)
    result = results[tier - 1]
    spec = row.tiers[tier - 1]
    if spec.get("voucher"):
        await prizes.carrier(db, row, tool)
    deadline = at + dt.timedelta(hours=row.claim_hours)
    _store_picks(db, row.id, tier, result, at, deadline)
    row.drawn_tiers = [*row.drawn_tiers, tier]
    await db.flush()
    info = info_of(tool, row)
    await _tell_winners(db, tracker, notice, info, tier, list(result.winners), at, deadline)
    return info, await drawn(db, info, tier, replayed=False)


def _store_picks(
    db: AsyncSession,
    draw_id: int,
    tier: int,
    result: TierResult,
    at: dt.datetime,
    deadline: dt.datetime,
) -> None:
    """The tier's winners (to claim by ``deadline``) and its reserves, in the order drawn."""
    for rank, entry_id in enumerate(result.winners, start=1):
        db.add(
            DrawWinner(
                draw_id=draw_id, tier=tier, rank=rank, reserve=False, entry_id=entry_id,
                status="won", won_at=at, claim_by=deadline, claim_fields={}, voucher_code="",
            )
        )  # fmt: skip
    for rank, entry_id in enumerate(result.reserves, start=1):
        db.add(
            DrawWinner(
                draw_id=draw_id, tier=tier, rank=rank, reserve=True, entry_id=entry_id,
                status="reserve", claim_fields={}, voucher_code="",
            )
        )  # fmt: skip


async def _tell_winners(
    db: AsyncSession,
    tracker: Tracker,
    notice: notify.Notice | None,
    info: DrawInfo,
    tier: int,
    entry_ids: list[int],
    at: dt.datetime,
    deadline: dt.datetime,
) -> None:
    if not entry_ids:
        return
    rows = await db.execute(
        select(DrawWinner.id, DrawEntry.lead_id, DrawEntry.visitor_id)
        .join(DrawEntry, DrawEntry.id == DrawWinner.entry_id)
        .where(
            DrawWinner.draw_id == info.id,
            DrawWinner.tier == tier,
            DrawWinner.status == "won",
            DrawWinner.entry_id.in_(entry_ids),
        )
    )
    picks: list[tuple[int, int | None]] = []
    for winner_id, lead_id, visitor_id in rows:
        ctx = EventContext(
            visitor_id=visitor_id,
            lead_id=lead_id,
            tool_id=info.tool_id,
            tool_version=info.tool_version,
        )
        tracker.record(db, ctx, DrawWon(tier=tier), at)
        picks.append((winner_id, lead_id))
    if notice is not None:
        await notice.winners(db, info, tier, picks, deadline)


async def drawn(db: AsyncSession, info: DrawInfo, tier: int, *, replayed: bool) -> DrawnTier:
    spec = info.tiers[tier - 1]
    rows = (
        await db.execute(
            select(DrawWinner.reserve, DrawEntry.phone_masked)
            .join(DrawEntry, DrawEntry.id == DrawWinner.entry_id)
            .where(DrawWinner.draw_id == info.id, DrawWinner.tier == tier)
            .order_by(DrawWinner.reserve, DrawWinner.rank)
        )
    ).all()
    winners = [phone for reserve, phone in rows if not reserve]
    undrawn = spec.quantity - len(winners)
    return DrawnTier(
        tier=tier,
        name=spec.name,
        quantity=spec.quantity,
        winners=winners,
        reserves=sum(1 for reserve, _ in rows if reserve),
        undrawn=undrawn,
        short=undrawn > 0,
        replayed=replayed,
    )


async def redraw(
    db: AsyncSession,
    tracker: Tracker,
    slug: str,
    tier: int,
    at: dt.datetime,
    notice: notify.Notice | None = None,
) -> tuple[DrawInfo, list[int]]:
    """Every winner of ``tier`` who did not claim by the deadline is replaced by the next
    reserve, in the reserves' order (nobody is picked or left out by hand). Returns the called
    up entry ids; a winner with no reserve left stays ``expired``."""
    tool, row = await take_turn(db, slug)
    info = info_of(tool, row)
    if not 1 <= tier <= len(row.tiers):
        raise NoSuchTier(fields={"tier": "no such tier"}, tier=tier)
    if tier not in info.drawn_tiers:
        raise NotClosed(N_("Draw this tier before redrawing it."))
    picks = (
        (
            await db.execute(
                select(DrawWinner)
                .where(DrawWinner.draw_id == row.id, DrawWinner.tier == tier)
                .order_by(DrawWinner.reserve, DrawWinner.rank)
            )
        )
        .scalars()
        .all()
    )
    lapsed = [p for p in picks if p.lapsed(at)]
    waiting = [p for p in picks if p.reserve and p.status == "reserve"]
    deadline = at + dt.timedelta(hours=row.claim_hours)
    called: list[int] = []
    for winner in lapsed:
        if not waiting:
            winner.status = "expired"
            continue
        reserve = waiting.pop(0)
        winner.status = "redrawn"
        reserve.status, reserve.won_at, reserve.claim_by = "won", at, deadline
        reserve.replaces = winner.id
        called.append(reserve.entry_id)
    await db.flush()
    await _tell_winners(db, tracker, notice, info, tier, called, at, deadline)
    return info, called


async def claim(
    db: AsyncSession,
    tracker: Tracker,
    info: DrawInfo,
    who: Entrant,
    body: ClaimBody,
    at: dt.datetime,
) -> list[ClaimAnswer]:
    """The winner confirms their prizes (every tier they won and have not claimed), before the
    deadline; a tier with a voucher template issues the voucher now."""
    rows = (
        (
            await db.execute(
                select(DrawWinner)
                .join(DrawEntry, DrawEntry.id == DrawWinner.entry_id)
                .where(
                    DrawWinner.draw_id == info.id,
                    DrawEntry.phone_hash == who.phone_hash,
                    DrawWinner.status.in_(("won", "claimed")),
                )
                .order_by(DrawWinner.tier)
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    if not rows:
        raise NotAWinner()
    answers: list[ClaimAnswer] = []
    for pick in rows:
        spec = info.tiers[pick.tier - 1]
        if pick.status == "claimed":
            answers.append(_claimed("already_claimed", spec.name, pick))
            continue
        if pick.lapsed(at):
            continue
        pick.status, pick.claimed_at = "claimed", at
        pick.claim_fields = {k: v for k, v in msgspec.to_builtins(body).items() if v}
        if spec.voucher:
            code, expires = await prizes.issue(db, info, pick.tier, spec.voucher, who, at)
            pick.voucher_code, pick.voucher_expires_at = code, expires
        tracker.record(db, tap_context(info, who), DrawClaimed(tier=pick.tier), at)
        answers.append(_claimed("claimed", spec.name, pick))
    if not answers:
        raise ClaimTooLate()
    await db.flush()
    return answers


def _claimed(result: str, tier: str, pick: DrawWinner) -> ClaimAnswer:
    return ClaimAnswer(
        result=result,  # type: ignore[arg-type]
        tier=tier,
        voucher_code=pick.voucher_code or None,
        voucher_expires_at=pick.voucher_expires_at,
    )


async def proof(db: AsyncSession, slug: str) -> Proof:
    """The proof bundle, once every tier is drawn (the seed is revealed then)."""
    tool, found = await load_draw(db, slug, published=True)
    info = info_of(tool, found)
    if len(info.drawn_tiers) < len(info.tiers):
        raise NotDrawn()
    frozen = await frozen_list(db, found.id)
    beacon = msgspec.convert(found.drand, DrandRound) if found.drand else None
    return prove(
        found.seed, frozen, info.rules, one_win_per_phone=found.one_win_per_phone, beacon=beacon
    )
