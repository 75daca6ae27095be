"""The invariants of a grab, checked (``leadkit grabs check``, the tests): won + remaining =
initial in SQL (and in Redis when it decides), SQL claims = Redis winners, no phone over its
limit. Units won by people who deleted their data count as won units of nobody."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.grabs.definition import info_of, load_grab
from app.grabs.models import Grab, GrabClaim
from app.grabs.store import ClaimStore, RedisClaimStore, is_tombstone


@dataclass(slots=True)
class CheckReport:
    slug: str
    initial: int
    remaining: int
    won: int
    phones: int
    max_per_phone: int
    limit: int
    deleted: int = 0  # units won by people who have since deleted their data
    redis_remaining: int | None = None
    redis_won: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def check_grab(sessionmaker: async_sessionmaker, store: ClaimStore, slug: str) -> CheckReport:
    """won + remaining = initial (SQL, and Redis when used), SQL claims = Redis winners,
    no phone over its limit. Waits until the claim stream is written to SQL first (every
    process's writer's share of it)."""
    async with sessionmaker() as db:
        tool, grab = await load_grab(db, slug)
    info = info_of(tool, grab)
    if isinstance(store, RedisClaimStore):
        await store.settle()
    async with sessionmaker() as db:
        grab_row = (await db.execute(select(Grab).where(Grab.id == info.id))).scalar_one()
        counts = dict(
            (
                await db.execute(
                    select(GrabClaim.phone_hash, func.count())
                    .where(GrabClaim.grab_id == info.id)
                    .group_by(GrabClaim.phone_hash)
                )
            ).all()
        )
    # Units of people who deleted their data are won units of nobody: each a tombstone in
    # SQL, one tally in Redis. They count in every sum, and are compared as a total.
    live = {h: n for h, n in counts.items() if not is_tombstone(h)}
    report = CheckReport(
        slug=slug,
        initial=grab_row.initial_stock,
        remaining=grab_row.stock,
        won=sum(counts.values()),
        phones=len(live),
        max_per_phone=max(live.values(), default=0),
        limit=grab_row.per_phone_limit,
        deleted=sum(counts.values()) - sum(live.values()),
    )
    if report.won + report.remaining != report.initial:
        report.problems.append(
            f"SQL: won {report.won} + remaining {report.remaining} != initial {report.initial}"
        )
    if report.max_per_phone > report.limit:
        report.problems.append(
            f"a phone holds {report.max_per_phone} units, over the limit of {report.limit}"
        )
    winners = await store.winners(info)
    if winners is not None:
        redis_left = await store.stock_left(info)
        redis_won = sum(winners.values())
        report.redis_remaining, report.redis_won = redis_left, redis_won
        if redis_won + redis_left != report.initial:
            report.problems.append(
                f"Redis: won {redis_won} + remaining {redis_left} != initial {report.initial}"
            )
        live_winners = {h: n for h, n in winners.items() if not is_tombstone(h)}
        redis_deleted = redis_won - sum(live_winners.values())
        if live_winners != live or redis_deleted != report.deleted:
            report.problems.append(
                f"SQL claims ({report.won} by {len(live)} phones, {report.deleted} deleted) "
                f"differ from Redis winners ({redis_won} by {len(live_winners)} phones, "
                f"{redis_deleted} deleted)"
            )
    return report
