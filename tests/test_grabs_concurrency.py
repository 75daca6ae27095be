"""Hundreds of parallel claims, with repeats per phone, on each backend: SQLite, PostgreSQL
(SQL only) and PostgreSQL + Redis. The invariants must hold every time."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.core.ratelimit import MemoryRateLimiter
from app.core.redis import make_redis
from app.db.engine import make_engine, make_sessionmaker
from app.grabs.models import Grab, GrabClaim
from app.grabs.schemas import ClaimAnswer
from app.grabs.service import Claimed, GrabBusy, Grabs, make_grabs
from app.grabs.store import Claimant, RedisClaimStore
from app.settings import Settings
from tests.conftest import (
    POSTGRES_SKIP,
    REDIS_PREFIX,
    REDIS_TEST_URL,
    _base_settings,
    _clean_postgres,
)
from tests.grab_support import add_grab, make_people, open_grab

BACKENDS = ["sqlite", "postgres-sql", "postgres-redis"]


@pytest.fixture(params=BACKENDS)
def grab_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    lots = {"grab_visitor_per_minute": 100_000, "grab_ip_per_minute": 100_000}
    if request.param == "sqlite":
        db = tmp_path / "leadkit.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), db)
        return _base_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{db}", **lots)
    if POSTGRES_SKIP:
        pytest.skip(POSTGRES_SKIP)
    url = request.getfixturevalue("pg_url")
    _clean_postgres(url)
    redis_url = REDIS_TEST_URL if request.param == "postgres-redis" else ""
    return _base_settings(
        tmp_path, database_url=url, redis_url=redis_url, redis_prefix=REDIS_PREFIX, **lots
    )


async def _storm(
    settings: Settings, *, stock: int, limit: int, phones: int, per_phone: int, attempts: int
) -> tuple[Grabs, list[tuple[Claimant, str | None, Claimed]], list[Any]]:
    """Parallel taps; returns the grabs, each tap (claimant, key, what it got) and the answers.
    A repeated key is sometimes sent by another visitor of the same phone (the same tap, retried
    from another browser) and sometimes by another phone (whose key it is not)."""
    engine = make_engine(settings)
    sessionmaker = make_sessionmaker(engine)
    redis = make_redis(settings)
    grabs = make_grabs(settings, engine, sessionmaker, redis, MemoryRateLimiter())
    await grabs.start()
    async with sessionmaker() as db, db.begin():
        await add_grab(db, open_grab(stock=stock, per_phone_limit=limit))
        people = await make_people(db, settings, phones, visitors_per_phone=per_phone)
    who = [await grabs.claimant(p.public_id) for p in people]
    assert all(isinstance(w, Claimant) for w in who)
    rng = random.Random(7)
    # As many taps in flight as the pool has connections: that is all the database ever sees at
    # once, and a tap queued for a connection on a slow machine would time out in the pool
    # (30 s) instead of racing the others for the stock.
    in_flight = asyncio.Semaphore(settings.db_pool_size)

    async def tap(person: Claimant, key: str | None) -> Claimed:
        async with in_flight:
            return await _tap(grabs, person, key)

    tasks = []
    taps: list[tuple[Claimant, str | None]] = []
    for i in range(attempts):
        person = who[i % len(who)]
        # Some taps carry a key, a few of them repeated (a retry of the same tap).
        key = (
            f"tap-{i}"
            if i % 3 == 0
            else (f"tap-{i - 1}" if i % 3 == 1 and rng.random() < 0.3 else None)
        )
        tasks.append(tap(person, key))
        taps.append((person, key))
    answers = await asyncio.gather(*tasks)
    return (
        grabs,
        [(*tap, c) for tap, c in zip(taps, answers, strict=True)],
        [c.answer for c in answers],
    )


async def _tap(grabs: Grabs, person: Claimant, key: str | None) -> Claimed:
    """One tap; when SQLite's single writer is too busy the answer is 429 "tap again" (nothing
    was claimed), and the visitor taps again, as the message asks."""
    while True:
        try:
            return await grabs.claim("flash", person, key, "203.0.113.9")
        except GrabBusy:
            await asyncio.sleep(0.05)


async def _finish(grabs: Grabs) -> None:
    await grabs.stop()
    await grabs.engine.dispose()
    redis = getattr(grabs.store, "_redis", None)
    if redis is not None:
        await redis.aclose()


@pytest.mark.parametrize(("stock", "limit"), [(100, 1), (150, 3)])
def test_parallel_claims_never_oversell(grab_settings: Settings, stock: int, limit: int) -> None:
    async def run() -> None:
        grabs, taps, answers = await _storm(
            grab_settings, stock=stock, limit=limit, phones=120, per_phone=2, attempts=600
        )
        try:
            # Keys belong to phones: a voucher reaches only the phone that won it, and a
            # replay answers what that phone's own first tap with the key got.
            phones_by_code: dict[str, set[str]] = {}
            first: dict[tuple[str, str], ClaimAnswer] = {}
            for who, key, got in taps:
                if got.answer.voucher is not None:
                    phones_by_code.setdefault(got.answer.voucher.code, set()).add(who.phone_hash)
                if key is not None and not got.replayed:
                    assert (who.phone_hash, key) not in first, (who, key)
                    first[(who.phone_hash, key)] = got.answer
            assert all(len(phones) == 1 for phones in phones_by_code.values()), phones_by_code
            for who, key, got in taps:
                if key is not None and got.replayed:
                    assert got.answer == first[(who.phone_hash, key)], (who, key, got)
            fresh_wins = sum(got.answer.result == "won" and not got.replayed for *_, got in taps)
            assert fresh_wins == len(phones_by_code)
            results = Counter(a.result for a in answers)
            codes = [a.voucher.code for a in answers if a.result == "won"]
            report = await grabs.check("flash")
            async with grabs.sessionmaker() as db:
                rows = (
                    await db.execute(
                        select(GrabClaim.phone_hash, func.count()).group_by(GrabClaim.phone_hash)
                    )
                ).all()
                grab = (await db.execute(select(Grab))).scalar_one()
                db_codes = list((await db.execute(select(GrabClaim.code))).scalars())
            won = len(set(codes))
            assert won == min(stock, 120 * limit), results
            assert report.ok, report.problems
            assert report.won == won and report.won + report.remaining == stock
            assert grab.stock == stock - won >= 0
            assert max(count for _, count in rows) <= limit
            assert len(db_codes) == len(set(db_codes)) == won
            assert set(db_codes) == set(codes)
            assert results["won"] >= won  # replays of a won tap answer "won" again
            assert set(results) <= {"won", "sold_out", "already_claimed"}
            if isinstance(grabs.store, RedisClaimStore):
                assert report.redis_won == won
        finally:
            await _finish(grabs)

    asyncio.run(run())


def test_replayed_key_gets_the_same_voucher(grab_settings: Settings) -> None:
    async def run() -> None:
        engine = make_engine(grab_settings)
        sessionmaker = make_sessionmaker(engine)
        grabs = make_grabs(
            grab_settings, engine, sessionmaker, make_redis(grab_settings), MemoryRateLimiter()
        )
        await grabs.start()
        try:
            async with sessionmaker() as db, db.begin():
                await add_grab(db, open_grab(stock=5, per_phone_limit=2))
                people = await make_people(db, grab_settings, 1)
            who = await grabs.claimant(people[0].public_id)
            assert who is not None
            same = await asyncio.gather(*[grabs.claim("flash", who, "k1", "ip") for _ in range(20)])
            codes = {c.answer.voucher.code for c in same if c.answer.voucher}
            assert {c.answer.result for c in same} == {"won"} and len(codes) == 1
            assert sum(not c.replayed for c in same) == 1
            second = (await grabs.claim("flash", who, "k2", "ip")).answer
            third = (await grabs.claim("flash", who, "k3", "ip")).answer
            assert second.result == "won" and second.voucher and second.voucher.n == 2
            assert third.result == "already_claimed"
            again = (await grabs.claim("flash", who, "k3", "ip")).answer
            assert again.result == "already_claimed"
            report = await grabs.check("flash")
            assert report.ok and report.won == 2 and report.remaining == 3
        finally:
            await _finish(grabs)

    asyncio.run(run())
