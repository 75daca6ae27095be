"""Fixed-window rate limits with one interface and two stores: SQL (embedded) and Redis.

The SQL store is the embedded default so several worker processes on one SQLite file share
their counters; the Redis store carries the same contract in production.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from redis.asyncio import Redis
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.models import rate_counter


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    count: int
    retry_after: int


@runtime_checkable
class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: int) -> Verdict:
        """Count one event for ``key``; allowed while the window's count stays ≤ ``limit``."""
        ...

    async def hit_all(self, checks: Sequence[tuple[str, int, int]]) -> list[Verdict]:
        """``hit`` for each (key, limit, window), in one round trip where the store allows."""
        ...

    async def peek(self, key: str, limit: int, window: int) -> Verdict:
        """The verdict a hit would get, without counting one."""
        ...

    async def reset(self, key: str) -> None:
        """Forget ``key`` (e.g. after a successful login)."""
        ...

    async def cooldown(self, key: str, seconds: int) -> int:
        """Take ``key`` for ``seconds`` unless it is already taken; returns 0 when taken now,
        else the seconds left (e.g. "60 s between two codes to one phone")."""
        ...


def _window(window: int, now: float) -> tuple[int, int]:
    start = int(now) // window * window
    return start, start + window - int(now)


class SQLRateLimiter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self._last_sweep = 0.0

    async def hit(self, key: str, limit: int, window: int) -> Verdict:
        now = time.time()
        start, retry = _window(window, now)
        stmt = (
            self._insert(rate_counter)
            .values(key=key, window_start=start, count=1, expires_at=start + window)
            .on_conflict_do_update(
                index_elements=["key", "window_start"], set_={"count": rate_counter.c.count + 1}
            )
            .returning(rate_counter.c.count)
        )
        async with self._engine.begin() as conn:
            count = (await conn.execute(stmt)).scalar_one()
            if now - self._last_sweep > 60:
                self._last_sweep = now
                await conn.execute(delete(rate_counter).where(rate_counter.c.expires_at < now))
        return Verdict(count <= limit, count, retry)

    async def hit_all(self, checks: Sequence[tuple[str, int, int]]) -> list[Verdict]:
        return [await self.hit(key, limit, window) for key, limit, window in checks]

    async def peek(self, key: str, limit: int, window: int) -> Verdict:
        start, retry = _window(window, time.time())
        async with self._engine.connect() as conn:
            count = (
                await conn.execute(
                    rate_counter.select()
                    .with_only_columns(rate_counter.c.count)
                    .where(rate_counter.c.key == key, rate_counter.c.window_start == start)
                )
            ).scalar() or 0
        return Verdict(count < limit, count, retry)

    async def reset(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(rate_counter).where(rate_counter.c.key == key))

    async def cooldown(self, key: str, seconds: int) -> int:
        now = int(time.time())
        # One row per key at window_start 0; the upsert only fires when the old one expired.
        stmt = (
            self._insert(rate_counter)
            .values(key=key, window_start=0, count=1, expires_at=now + seconds)
            .on_conflict_do_update(
                index_elements=["key", "window_start"],
                set_={"count": 1, "expires_at": now + seconds},
                where=rate_counter.c.expires_at <= now,
            )
            .returning(rate_counter.c.expires_at)
        )
        async with self._engine.begin() as conn:
            taken = (await conn.execute(stmt)).scalar()
            if taken is not None:
                return 0
            expires = (
                await conn.execute(
                    rate_counter.select()
                    .with_only_columns(rate_counter.c.expires_at)
                    .where(rate_counter.c.key == key, rate_counter.c.window_start == 0)
                )
            ).scalar() or now
        return max(1, int(expires) - now)


class MemoryRateLimiter:
    """Counters in this process only. For the embedded default's highest-volume limits (event
    ingest), where a database write per request would cost more than the limit protects;
    with several workers each counts on its own, so the effective limit is per worker."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._cooldowns: dict[str, float] = {}

    def _sweep(self, start: int) -> None:
        if len(self._counts) > 10_000:
            for key in [k for k in self._counts if k[1] < start]:
                del self._counts[key]

    async def hit(self, key: str, limit: int, window: int) -> Verdict:
        start, retry = _window(window, time.time())
        self._sweep(start)
        count = self._counts.get((key, start), 0) + 1
        self._counts[(key, start)] = count
        return Verdict(count <= limit, count, retry)

    async def hit_all(self, checks: Sequence[tuple[str, int, int]]) -> list[Verdict]:
        return [await self.hit(key, limit, window) for key, limit, window in checks]

    async def peek(self, key: str, limit: int, window: int) -> Verdict:
        start, retry = _window(window, time.time())
        count = self._counts.get((key, start), 0)
        return Verdict(count < limit, count, retry)

    async def reset(self, key: str) -> None:
        for name in [k for k in self._counts if k[0] == key]:
            del self._counts[name]
        self._cooldowns.pop(key, None)

    async def cooldown(self, key: str, seconds: int) -> int:
        now = time.time()
        until = self._cooldowns.get(key, 0.0)
        if until > now:
            return max(1, int(until - now))
        self._cooldowns[key] = now + seconds
        return 0


class RedisRateLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}rl:"

    async def hit(self, key: str, limit: int, window: int) -> Verdict:
        start, retry = _window(window, time.time())
        name = f"{self._prefix}{key}:{start}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window + 1)
            count, _ = await pipe.execute()
        return Verdict(int(count) <= limit, int(count), retry)

    async def hit_all(self, checks: Sequence[tuple[str, int, int]]) -> list[Verdict]:
        now = time.time()
        windows = [(*_window(window, now), key, limit, window) for key, limit, window in checks]
        async with self._redis.pipeline(transaction=False) as pipe:
            for start, _, key, _, window in windows:
                name = f"{self._prefix}{key}:{start}"
                pipe.incr(name)
                pipe.expire(name, window + 1)
            replies = await pipe.execute()
        counts = [int(c) for c in replies[::2]]
        return [
            Verdict(count <= limit, count, retry)
            for count, (_, retry, _, limit, _) in zip(counts, windows, strict=True)
        ]

    async def peek(self, key: str, limit: int, window: int) -> Verdict:
        start, retry = _window(window, time.time())
        count = int(await self._redis.get(f"{self._prefix}{key}:{start}") or 0)
        return Verdict(count < limit, count, retry)

    async def reset(self, key: str) -> None:
        async for name in self._redis.scan_iter(match=f"{self._prefix}{key}:*"):
            await self._redis.delete(name)

    async def cooldown(self, key: str, seconds: int) -> int:
        name = f"{self._prefix}cd:{key}"
        if await self._redis.set(name, 1, nx=True, ex=seconds):
            return 0
        return max(1, int(await self._redis.ttl(name)))
