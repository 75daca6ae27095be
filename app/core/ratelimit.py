"""Fixed-window rate limits with one interface and two stores: SQL (embedded) and Redis.

The SQL store is the embedded default so several worker processes on one SQLite file share
their counters; the Redis store carries the same contract in production.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from redis.asyncio import Redis
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.clock import CHINA_OFFSET_SECONDS
from app.core.models import rate_counter
from app.core.sql import upsert_insert


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    count: int
    retry_after: int


@dataclass(frozen=True, slots=True)
class KeyCount:
    """One key's count in the current window, and the seconds until that window ends."""

    key: str
    count: int
    retry_after: int


@runtime_checkable
class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: int, cost: int = 1) -> Verdict:
        """Count ``cost`` events for ``key``; allowed while the window's count stays
        ≤ ``limit``."""
        ...

    async def hit_all(self, checks: Sequence[tuple[str, int, int]], cost: int = 1) -> list[Verdict]:
        """``hit`` for each (key, limit, window), in one round trip where the store allows."""
        ...

    async def peek(self, key: str, limit: int, window: int) -> Verdict:
        """The verdict a hit would get, without counting one."""
        ...

    async def reset(self, key: str) -> None:
        """Forget ``key``: its counts in every window and its cooldown (e.g. after a successful
        login, or when the person the key names deleted their data)."""
        ...

    async def cooldown(self, key: str, seconds: int) -> int:
        """Take ``key`` for ``seconds`` unless it is already taken; returns 0 when taken now,
        else the seconds left (e.g. "60 s between two codes to one phone")."""
        ...

    async def refund(self, key: str, window: int, at: float) -> None:
        """Take back one event ``hit`` counted for ``key`` at ``at`` (epoch seconds, the time
        of that hit, so a window that turned meanwhile is not the one refunded), because what
        it counted did not happen after all (an SMS the gateway refused). Never below zero."""
        ...

    async def release(self, key: str) -> None:
        """Free a ``cooldown`` taken for ``key`` before it runs out (the action it spaced out
        failed, so the next try need not wait)."""
        ...

    async def clear(self, key: str, window: int) -> None:
        """Forget ``key``'s count in the current ``window``-second window, in one write (a
        staff sign-in that succeeded, an admin lifting a limit)."""
        ...

    async def counts(
        self, prefix: str, window: int, at_least: int = 1, limit: int = 200
    ) -> list[KeyCount]:
        """The keys starting with ``prefix`` whose count in the current ``window``-second
        window is at least ``at_least``, highest first, at most ``limit`` of them (an admin's
        overview of who is being limited; not for hot paths)."""
        ...


# Windows are aligned to China time (UTC+8, no daylight saving): a daily cap starts afresh at
# midnight in Beijing, not at 08:00. Minute and hour windows are unaffected by the shift.
CHINA_OFFSET = CHINA_OFFSET_SECONDS


def window_start(window: int, now: float) -> int:
    """The start (epoch seconds) of the fixed ``window``-second window holding ``now``."""
    return (int(now) + CHINA_OFFSET) // window * window - CHINA_OFFSET


def _window(window: int, now: float) -> tuple[int, int]:
    """(start of the fixed window holding ``now``, seconds until it ends)."""
    start = window_start(window, now)
    return start, start + window - int(now)


class SQLRateLimiter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = upsert_insert(engine)
        self._last_sweep = 0.0

    async def hit(self, key: str, limit: int, window: int, cost: int = 1) -> Verdict:
        return (await self.hit_all([(key, limit, window)], cost))[0]

    async def hit_all(self, checks: Sequence[tuple[str, int, int]], cost: int = 1) -> list[Verdict]:
        """Every counter in one short transaction (SQLite takes its write lock once)."""
        now = time.time()
        verdicts = []
        async with self._engine.begin() as conn:
            for key, limit, window in checks:
                start, retry = _window(window, now)
                stmt = (
                    self._insert(rate_counter)
                    .values(key=key, window_start=start, count=cost, expires_at=start + window)
                    .on_conflict_do_update(
                        index_elements=["key", "window_start"],
                        set_={"count": rate_counter.c.count + cost},
                    )
                    .returning(rate_counter.c.count)
                )
                count = (await conn.execute(stmt)).scalar_one()
                verdicts.append(Verdict(count <= limit, count, retry))
            if now - self._last_sweep > 60:
                self._last_sweep = now
                await conn.execute(delete(rate_counter).where(rate_counter.c.expires_at < now))
        return verdicts

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

    async def refund(self, key: str, window: int, at: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(rate_counter)
                .where(
                    rate_counter.c.key == key,
                    rate_counter.c.window_start == window_start(window, at),
                    rate_counter.c.count > 0,
                )
                .values(count=rate_counter.c.count - 1)
            )

    async def release(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(rate_counter).where(
                    rate_counter.c.key == key, rate_counter.c.window_start == 0
                )
            )

    async def clear(self, key: str, window: int) -> None:
        start, _ = _window(window, time.time())
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(rate_counter).where(
                    rate_counter.c.key == key, rate_counter.c.window_start == start
                )
            )

    async def counts(
        self, prefix: str, window: int, at_least: int = 1, limit: int = 200
    ) -> list[KeyCount]:
        start, retry = _window(window, time.time())
        query = (
            select(rate_counter.c.key, rate_counter.c.count)
            .where(
                rate_counter.c.key.startswith(prefix, autoescape=True),
                rate_counter.c.window_start == start,
                rate_counter.c.count >= max(1, at_least),
            )
            .order_by(rate_counter.c.count.desc(), rate_counter.c.key)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [KeyCount(key, count, retry) for key, count in rows]


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

    async def hit(self, key: str, limit: int, window: int, cost: int = 1) -> Verdict:
        start, retry = _window(window, time.time())
        self._sweep(start)
        count = self._counts.get((key, start), 0) + cost
        self._counts[(key, start)] = count
        return Verdict(count <= limit, count, retry)

    async def hit_all(self, checks: Sequence[tuple[str, int, int]], cost: int = 1) -> list[Verdict]:
        return [await self.hit(key, limit, window, cost) for key, limit, window in checks]

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

    async def refund(self, key: str, window: int, at: float) -> None:
        name = (key, window_start(window, at))
        if self._counts.get(name, 0) > 0:
            self._counts[name] -= 1

    async def release(self, key: str) -> None:
        self._cooldowns.pop(key, None)

    async def clear(self, key: str, window: int) -> None:
        self._counts.pop((key, _window(window, time.time())[0]), None)

    async def counts(
        self, prefix: str, window: int, at_least: int = 1, limit: int = 200
    ) -> list[KeyCount]:
        start, retry = _window(window, time.time())
        found = [
            KeyCount(key, count, retry)
            for (key, began), count in self._counts.items()
            if began == start and count >= max(1, at_least) and key.startswith(prefix)
        ]
        return sorted(found, key=lambda c: (-c.count, c.key))[:limit]


class RedisRateLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}rl:"

    async def hit(self, key: str, limit: int, window: int, cost: int = 1) -> Verdict:
        start, retry = _window(window, time.time())
        name = f"{self._prefix}{key}:{start}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(name, cost)
            pipe.expire(name, window + 1)
            count, _ = await pipe.execute()
        return Verdict(int(count) <= limit, int(count), retry)

    async def hit_all(self, checks: Sequence[tuple[str, int, int]], cost: int = 1) -> list[Verdict]:
        now = time.time()
        windows = [(*_window(window, now), key, limit, window) for key, limit, window in checks]
        async with self._redis.pipeline(transaction=False) as pipe:
            for start, _, key, _, window in windows:
                name = f"{self._prefix}{key}:{start}"
                pipe.incrby(name, cost)
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
        # The key may hold glob characters (a username like "a*"): match it literally.
        literal = re.sub(r"([*?\[\]\\])", r"\\\1", f"{self._prefix}{key}")
        async for name in self._redis.scan_iter(match=f"{literal}:*"):
            await self._redis.delete(name)
        await self._redis.delete(f"{self._prefix}cd:{key}")  # the cooldown lives apart

    async def cooldown(self, key: str, seconds: int) -> int:
        name = f"{self._prefix}cd:{key}"
        if await self._redis.set(name, 1, nx=True, ex=seconds):
            return 0
        return max(1, int(await self._redis.ttl(name)))

    async def refund(self, key: str, window: int, at: float) -> None:
        # A conditional DECR: an expired (absent) counter must not come back as -1.
        await self._redis.eval(_REFUND, 1, f"{self._prefix}{key}:{window_start(window, at)}")

    async def release(self, key: str) -> None:
        await self._redis.delete(f"{self._prefix}cd:{key}")

    async def clear(self, key: str, window: int) -> None:
        await self._redis.delete(f"{self._prefix}{key}:{_window(window, time.time())[0]}")

    async def counts(
        self, prefix: str, window: int, at_least: int = 1, limit: int = 200
    ) -> list[KeyCount]:
        start, retry = _window(window, time.time())
        suffix = f":{start}"
        # Glob characters in the prefix are matched literally.
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", f"{self._prefix}{prefix}") + "*" + suffix
        names = [
            name.decode() if isinstance(name, bytes) else str(name)
            async for name in self._redis.scan_iter(match=pattern, count=1000)
        ]
        values = await self._redis.mget(names) if names else []
        found = [
            KeyCount(name[len(self._prefix) : -len(suffix)], int(value), retry)
            for name, value in zip(names, values, strict=True)
            if value is not None and int(value) >= max(1, at_least)
        ]
        return sorted(found, key=lambda c: (-c.count, c.key))[:limit]


_REFUND = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""
