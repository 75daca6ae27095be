"""The Redis entry path (with ``REDIS_URL``): one Lua script (redis_scripts.py) counts the tap
against the rate limits, answers an entry made before, refuses a closed window or a visitor
not eligible, decides the referral chance and records the entry, its share code and the count
— one round trip — and appends the entry to the draw's stream; the EntryWriter
(entry_writer.py) writes the stream to SQL in groups. A draw is loaded from SQL the first time
Redis is asked about it (or after Redis lost it).

The host's close *seals* the draw in Redis first (nothing enters after that, atomically with
the script), then waits until the draw's stream is written (``flush``), then freezes the list
in SQL: no entry Redis took is missing from the frozen list.

Keys, each with the draw's hash tag: ``{prefix}{draw:ID}:ready|codes|chances|referrers|sealed|
entries`` and the entries' rate-limit counters ``{prefix}rl:draw:{draw:ID}:visitor:V:…``. The
set ``{prefix}draws:streams`` names the streams the writers read (a draw's stream leaves it once
the draw is frozen)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.ratelimit import window_start
from app.draws.definition import DrawInfo
from app.draws.entries import Entrant
from app.draws.entry_writer import EntryWriter
from app.draws.models import Draw, DrawEntry
from app.draws.redis_scripts import ENTER_LUA, INIT_LUA


class Limited(Exception):
    """A tap past one of the limits: ``retry_after`` seconds until its window ends."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class Decided(msgspec.Struct, frozen=True):
    """What the script decided: the result, the share code (the reason, not eligible), the
    entry's chances, the entrant count, and for a new entry the referral's outcome."""

    result: str
    code: str
    chances: int
    entrants: int
    referral: str


def limit_name(draw_id: int, what: str) -> str:
    """A rate limit of a draw's entries (``visitor:V``, ``ip:A``), in the draw's hash slot."""
    return f"draw:{{draw:{draw_id}}}:{what}"


def redis_entries(redis: object | None, prefix: str, engine: AsyncEngine) -> RedisEntries | None:
    """The Redis entry path when there is a Redis (app/asgi.py), else None: SQL alone."""
    return RedisEntries(redis, prefix, engine) if isinstance(redis, Redis) else None


class RedisEntries:
    def __init__(self, redis: Redis, prefix: str, engine: AsyncEngine) -> None:
        self._redis = redis
        self._prefix = prefix
        self._engine = engine
        self.registry = f"{prefix}draws:streams"
        self.writer = EntryWriter(redis, engine, self.registry)
        self._enter = redis.register_script(ENTER_LUA)
        self._init = redis.register_script(INIT_LUA)

    def _key(self, draw_id: int, name: str) -> str:
        return f"{self._prefix}{{draw:{draw_id}}}:{name}"

    def stream(self, draw_id: int) -> str:
        return self._key(draw_id, "entries")

    def _keys(self, draw_id: int) -> list[str]:
        return [
            self._key(draw_id, name)
            for name in ("ready", "codes", "chances", "referrers", "sealed", "entries")
        ]

    async def enter(
        self,
        info: DrawInfo,
        who: Entrant,
        *,
        code: str,
        at: dt.datetime,
        open_: bool,
        reason: str | None,
        ref: str,
        limits: Sequence[tuple[str, int, int]],
    ) -> Decided:
        """One tap, decided in one round trip (the limits are ``(name, limit, window)``, named
        by ``limit_name``); Limited past a limit."""
        epoch = int(time.time())
        # The same counters RedisRateLimiter keeps: {prefix}rl:{key}:{window start}.
        counters = [
            f"{self._prefix}rl:{name}:{window_start(window, epoch)}" for name, _, window in limits
        ]
        args: list[Any] = [
            who.phone_hash,
            code,
            repr(at.timestamp()),
            "1" if open_ else "0",
            reason or "",
            ref.upper()[:16],
            "1" if info.referrals else "0",
            info.referral_cap,
            repr(who.lead_created.timestamp()) if who.lead_created else "",
            who.visitor_id,
            who.lead_id,
            f"{who.link_id or 0}|{who.platform}|{info.tool_id}|{info.tool_version}",
            who.phone_masked,
            info.id,
            len(limits),
        ]
        for _, limit, window in limits:
            args += [limit, window]
        for _ in range(2):
            found: Any = await self._enter(keys=[*self._keys(info.id), *counters], args=args)
            result = found[0].decode()
            if result == "limited":
                window = limits[int(found[1]) - 1][2]
                raise Limited(window_start(window, epoch) + window - epoch)
            if result != "uninit":
                return Decided(
                    result, found[1].decode(), int(found[2]), int(found[3]), found[4].decode()
                )
            await self._initialise(info.id)
        raise RuntimeError(f"draw {info.id}: Redis entries could not be initialised")

    async def _initialise(self, draw_id: int, db: AsyncSession | None = None) -> None:
        """First use of a draw in Redis: its entries from the durable record (read through the
        caller's session when it holds one: a request uses one connection)."""
        reader: Any = nullcontext(db) if db is not None else self._engine.connect()
        async with reader as conn:
            closed = await conn.scalar(select(Draw.closed_at).where(Draw.id == draw_id))
            rows = (
                await conn.execute(
                    select(
                        DrawEntry.phone_hash,
                        DrawEntry.code,
                        DrawEntry.chances,
                        DrawEntry.created_at,
                    ).where(DrawEntry.draw_id == draw_id)
                )
            ).all()
        args: list[Any] = ["1" if closed is not None else "0"]
        for phone_hash, code, chances, created in rows:
            at = created if created.tzinfo else created.replace(tzinfo=dt.UTC)
            args += [phone_hash, code, chances, repr(at.timestamp())]
        if closed is None:  # the writers read its stream from now on
            await self.writer.ensure_group(self.stream(draw_id))
            await self._redis.sadd(self.registry, self.stream(draw_id))
        await self._init(keys=self._keys(draw_id)[:5], args=args)

    async def _ready(self, draw_id: int, db: AsyncSession | None) -> None:
        if not await self._redis.exists(self._key(draw_id, "ready")):
            await self._initialise(draw_id, db)

    async def count(self, draw_id: int, db: AsyncSession | None = None) -> int:
        """The draw's entrants as Redis counts them (every entry taken, written or not)."""
        await self._ready(draw_id, db)
        return int(await self._redis.hlen(self._key(draw_id, "codes")))

    async def mine(
        self, draw_id: int, phone_hash: str, db: AsyncSession | None = None
    ) -> tuple[str, int] | None:
        """The phone's share code and chances, when it entered."""
        await self._ready(draw_id, db)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self._key(draw_id, "codes"), phone_hash)
            pipe.hget(self._key(draw_id, "chances"), phone_hash)
            code, chances = await pipe.execute()
        return None if code is None else (code.decode(), int(chances or 1))

    async def seal(self, draw_id: int) -> None:
        """Nothing enters the draw from now on; returns once every entry Redis took is in SQL
        (the writers', or written here: a redelivered entry changes nothing)."""
        await self._redis.set(self._key(draw_id, "sealed"), "1")
        await self.writer.flush(self.stream(draw_id))

    async def sealed(self, draw_id: int) -> None:
        """The draw is frozen: the writers need not read its stream any more."""
        await self._redis.srem(self.registry, self.stream(draw_id))

    async def unseal(self, draw_id: int) -> None:
        """The close did not happen (its transaction rolled back), or the host opened again."""
        await self._redis.delete(self._key(draw_id, "sealed"))
        if await self._redis.exists(self._key(draw_id, "ready")):
            await self.writer.ensure_group(self.stream(draw_id))
            await self._redis.sadd(self.registry, self.stream(draw_id))

    async def settle(self) -> None:
        """Every entry taken so far written to SQL (tests): each stream until it is empty — a
        drain alone may return while the writer task is still writing what it read."""
        for stream in await self.writer.streams():
            await self.writer.flush(stream)

    async def start(self) -> None:
        await self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()
