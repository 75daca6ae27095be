"""``leadkit draws check SLUG``: the operator's check that a draw's stored data still says what
the draw showed and published (docs/draws.md, "Checking a draw").

Read from SQL in one transaction, each check one line:

- **entrants**: the entries stored in SQL agree with the count the draw shows (the count frozen
  at the close; while open, the draw's tally) and, with Redis, with the entries Redis took (the
  entry writer is made to catch up on the draw first: app/draws/redis_entries.py).
- **chances**: no entry holds more chances than its referrals could earn (1 plus one per entry
  it referred, up to the draw's cap; exactly 1 when referral chances are off).
- **commitment**, **entrant list**, **drand**, **tier N**: for a closed draw, the bundle the
  draw stands for — the commitment and the list's hash and count as published, the seed, the
  drand round and every drawn tier's winners and reserves as stored — goes through
  ``proof.verify``, the very check ``leadkit draws verify`` makes: the list is rebuilt from the
  stored entries (``entrants.freeze``) and the winners recomputed by the documented algorithm.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.clock import now
from app.core.redis import make_redis
from app.draws import entries
from app.draws.definition import info_of, load_draw, state_of
from app.draws.drand import DrandRound
from app.draws.entrants import DrawInputError, Entry, freeze
from app.draws.fairness import TierRule, commitment
from app.draws.models import Draw, DrawEntry, DrawWinner
from app.draws.proof import Mismatch, ProofTier, prove, verify
from app.draws.redis_entries import RedisEntries
from app.settings import Settings, load_settings

# proof.verify's codes, by the line that reports them.
_LIST = ("entrants", "entrants_hash", "entrants_count")
_DRAND = (
    "mode",
    "drand_chain",
    "drand_untrusted_chain",
    "drand_scheme",
    "drand_signature",
    "drand_randomness",
)
_TIER = ("winners", "reserves", "undrawn")


class Line(msgspec.Struct, frozen=True):
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {'ok' if self.ok else 'MISMATCH'} ({self.detail})"


class DrawCheck(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    state: str
    drawn: int  # tiers drawn
    tiers: int
    lines: list[Line]

    @property
    def ok(self) -> bool:
        return all(line.ok for line in self.lines)


async def check_draw(
    db: AsyncSession,
    slug: str,
    *,
    trusted_chain: str | None,
    counts: Mapping[str, int] | None = None,
    settings: Settings | None = None,
) -> DrawCheck:
    """Check the draw at ``slug`` (published or not); DrawNotFound. ``counts``: the entrant
    count of each store besides SQL; by default Redis's when ``settings`` (else the
    environment's) name one."""
    tool, row = await load_draw(db, slug)
    info = info_of(tool, row)
    if counts is None:
        counts = await _redis_counts(db, row.id, settings or load_settings())
    stored = (
        await db.execute(
            select(
                DrawEntry.id,
                DrawEntry.phone_hash,
                DrawEntry.phone_masked,
                DrawEntry.chances,
                DrawEntry.referred_by,
            )
            .where(DrawEntry.draw_id == row.id)
            .order_by(DrawEntry.id)
        )
    ).all()
    shown = row.entrants_count if row.closed_at else await entries.count(db, row.id)
    lines = [
        _entrants({"SQL": len(stored), **(counts or {})}, shown, frozen=row.closed_at is not None),
        _chances(stored, row),
    ]
    if row.closed_at is None:
        lines.append(_commitment_only(row))
        lines.append(Line("entrant list", True, "not frozen yet: the entries are open"))
    else:
        picks = (
            await db.execute(
                select(DrawWinner.tier, DrawWinner.reserve, DrawWinner.entry_id)
                .where(DrawWinner.draw_id == row.id)
                .order_by(DrawWinner.tier, DrawWinner.reserve, DrawWinner.rank)
            )
        ).all()
        lines += _bundle_lines(row, info.rules, stored, picks, trusted_chain)
    return DrawCheck(
        slug=info.slug,
        state=state_of(info, now()),
        drawn=len(info.drawn_tiers),
        tiers=len(info.tiers),
        lines=lines,
    )


async def _redis_counts(db: AsyncSession, draw_id: int, settings: Settings) -> dict[str, int]:
    """Redis's entrant count of the draw, once every entry Redis took is written to SQL (the
    check's later reads see them: they commit before)."""
    redis = make_redis(settings)
    if redis is None or not isinstance(db.bind, AsyncEngine):
        return {}
    try:
        store = RedisEntries(redis, settings.redis_prefix, db.bind)
        await store.writer.flush(store.stream(draw_id))
        return {"Redis": await store.count(draw_id)}
    finally:
        await redis.aclose()


def _entrants(counts: Mapping[str, int], shown: int, *, frozen: bool) -> Line:
    what = "frozen at the close" if frozen else "live count"
    stores = ", ".join(f"{store} {n}" for store, n in counts.items())
    ok = all(n == shown for n in counts.values())
    return Line("entrants", ok, f"{stores}; the draw shows {shown} ({what})")


def _chances(stored: Sequence[Any], row: Draw) -> Line:
    referred = Counter(r.referred_by for r in stored if r.referred_by is not None)
    cap = row.referral_cap if row.referrals else 0
    total = sum(r.chances for r in stored)
    rule = f"on, cap {cap}" if row.referrals else "off"
    for r in stored:
        most = 1 + min(cap, referred[r.id])
        if r.chances > most:
            return Line(
                "chances",
                False,
                f"entry {r.id} has {r.chances} chances; its {referred[r.id]} referrals allow "
                f"at most {most} (referral chances {rule})",
            )
    return Line(
        "chances", True, f"{len(stored)} entries, {total} chances, none above what referrals earn"
    )


def _commitment_only(row: Draw) -> Line:
    computed = commitment(row.seed)
    if computed == row.commitment:
        return Line("commitment", True, f"SHA-256 of the seed is {computed}")
    return Line(
        "commitment", False, f"SHA-256 of the seed is {computed}, published {row.commitment}"
    )


def _bundle_lines(
    row: Draw,
    rules: list[TierRule],
    stored: Sequence[Any],
    picks: Sequence[Any],
    trusted_chain: str | None,
) -> list[Line]:
    """The closed draw as a proof bundle — published hash, count and commitment, stored picks —
    checked by proof.verify against the list rebuilt from the stored entries."""
    try:
        frozen = freeze(
            Entry(id=r.id, phone_key=r.phone_hash, phone=r.phone_masked, chances=r.chances)
            for r in stored
        )
    except DrawInputError as exc:
        return [
            _commitment_only(row),
            Line("entrant list", False, f"the stored entries are not a valid list: {exc}"),
        ]
    beacon = msgspec.convert(row.drand, DrandRound) if row.drand else None
    computed = prove(
        row.seed, frozen, rules, one_win_per_phone=row.one_win_per_phone, beacon=beacon
    )
    drawn = set(row.drawn_tiers)
    tiers = []
    for number, tier in enumerate(computed.tiers, start=1):
        if number in drawn:  # as stored; an undrawn tier is left as computed (nothing to check)
            winners = [e for t, reserve, e in picks if t == number and not reserve]
            reserves = [e for t, reserve, e in picks if t == number and reserve]
            tier = msgspec.structs.replace(
                tier, winners=winners, reserves=reserves, undrawn=tier.quantity - len(winners)
            )
        tiers.append(tier)
    bundle = msgspec.structs.replace(
        computed,
        commitment=row.commitment,
        entrants_hash=row.entrants_hash,
        entrants_count=row.entrants_count,
        tiers=tiers,
    )
    found = verify(bundle, trusted_chain=trusted_chain)
    lines = [
        _from(
            found, "commitment", ("seed", "commitment"), f"SHA-256 of the seed is {row.commitment}"
        ),
        _from(
            found,
            "entrant list",
            _LIST,
            f"{frozen.count} stored entries hash to {frozen.hash}, as published at the close",
        ),
        _drand_line(found, row, beacon),
    ]
    lines += [_tier_line(found, number, tier, drawn) for number, tier in enumerate(tiers, start=1)]
    stray = sorted({t for t, _, _ in picks} - drawn)
    if stray:
        lines.append(Line("picks", False, f"winners stored for tiers never drawn: {stray}"))
    if any(m.code in ("algorithm", "tiers") for m in found):
        lines.append(_from(found, "rules", ("algorithm", "tiers"), ""))
    return lines


def _from(found: list[Mismatch], name: str, codes: tuple[str, ...], ok: str) -> Line:
    wrong = [m.message for m in found if m.code in codes]
    return Line(name, not wrong, "; ".join(wrong) if wrong else ok)


def _drand_line(found: list[Mismatch], row: Draw, beacon: DrandRound | None) -> Line:
    if beacon is not None:
        return _from(found, "drand", _DRAND, f"round {beacon.round} verified")
    if row.use_drand and row.drand_round is not None:
        return Line("drand", True, f"round {row.drand_round} fixed at the close, not fetched yet")
    if row.use_drand:  # the close could reach no beacon (app/draws/drawing.py)
        return _from(found, "drand", _DRAND, "not used: no beacon at the close, commit-reveal")
    return _from(found, "drand", _DRAND, "not used, commit-reveal")


def _tier_line(found: list[Mismatch], number: int, tier: ProofTier, drawn: set[int]) -> Line:
    name = f"tier {number} {tier.name}"
    if number not in drawn:
        return Line(name, True, "not drawn yet")
    # proof.verify names a tier's mismatch "tier N (name): …".
    mine = tuple(m for m in found if m.code in _TIER and m.message.startswith(f"tier {number} ("))
    ids = f"winners {_ids(tier.winners)}; reserves {_ids(tier.reserves)}"
    return _from(list(mine), name, _TIER, f"{ids}, as the algorithm gives for the frozen list")


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids)) if ids else "none"
