"""The Redis claim store: one Lua script (redis_scripts.py) does the duplicate check, the
stock check, the decrement, records the winner and appends the claim to a stream; the
ClaimWriter (redis_writer.py) brings the stream to SQL. A grab's stock and winners are loaded
from SQL the first time Redis is asked about it (or after Redis lost them)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from contextlib import nullcontext, suppress
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.errors import Conflict
from app.core.i18n import N_
from app.core.ratelimit import window_start
from app.grabs.models import Grab, GrabClaim
from app.grabs.schemas import ClaimAnswer, Result
from app.grabs.store.claims import (
    DELETED_UNITS,
    IDEMPOTENCY_TTL,
    Claimant,
    ClaimRateLimited,
    GrabInfo,
    terms,
    voucher,
)
from app.grabs.store.redis_scripts import (
    CLAIM_LUA,
    FORGET_LUA,
    INIT_LUA,
    RESTOCK_LUA,
    redis_glob,
)
from app.grabs.store.redis_writer import ClaimWriter


class RedisClaimStore:
    """Claims decided in Redis, written to SQL by a ClaimWriter."""

    def __init__(self, redis: Redis, prefix: str, engine: AsyncEngine) -> None:
        self._redis = redis
        self._prefix = prefix
        self._engine = engine
        self._stream = f"{prefix}grabs:claims"
        self.writer = ClaimWriter(redis, prefix, engine, self._stream, self._forget_in)
        self._claim = redis.register_script(CLAIM_LUA)
        self._init = redis.register_script(INIT_LUA)
        self._restock = redis.register_script(RESTOCK_LUA)
        self._forget = redis.register_script(FORGET_LUA)

    def _keys(self, grab_id: int) -> tuple[str, str, str]:
        base = f"{self._prefix}grab:{grab_id}:"
        return base + "stock", base + "winners", base + "answers"

    # The rate limits travel inside the claim script (one round trip instead of two).
    limits_inline = True

    async def claim(
        self,
        grab: GrabInfo,
        who: Claimant,
        key: str | None,
        limits: Sequence[tuple[str, int, int]] = (),
    ) -> tuple[ClaimAnswer, bool]:
        at, code, expires = terms(grab)
        stock, winners, answers = self._keys(grab.id)
        epoch = int(time.time())
        # The same counters RedisRateLimiter keeps: {prefix}rl:{key}:{window start}.
        counters = [
            f"{self._prefix}rl:{name}:{window_start(window, epoch)}" for name, _, window in limits
        ]
        args: list[Any] = [
            who.phone_hash,
            grab.per_phone_limit,
            f"{who.phone_hash}:{key}" if key else "",
            code,
            int(expires.timestamp()),
            grab.id,
            who.visitor_id,
            who.lead_id,
            key or "",
            at.timestamp(),
            IDEMPOTENCY_TTL,
            len(limits),
            f"{who.link_id or 0}|{who.platform}|{grab.tool_id}|{grab.tool_version}",
        ]
        for _, limit, window in limits:
            args += [limit, window]
        for _ in range(2):
            keys = [stock, winners, answers, self._stream, *counters]
            kind, answer = await self._claim(keys=keys, args=args)
            if kind == b"limited":
                window = limits[int(answer) - 1][2]
                raise ClaimRateLimited(retry_after=window_start(window, epoch) + window - epoch)
            if kind != b"uninit":
                return self._answer(grab, answer.decode()), kind == b"replay"
            await self._initialise(grab)
        raise RuntimeError(f"grab {grab.id}: Redis stock could not be initialised")

    def _answer(self, grab: GrabInfo, answer: str) -> ClaimAnswer:
        if answer.startswith("won|"):
            _, n, code, expires = answer.split("|")
            at = dt.datetime.fromtimestamp(int(expires), dt.UTC)
            return ClaimAnswer(result="won", voucher=voucher(grab, code, int(n), at))
        return ClaimAnswer(result=answer)  # type: ignore[arg-type]

    async def _initialise(self, grab: GrabInfo, conn: AsyncConnection | None = None) -> None:
        """First use of a grab in Redis: stock and winners from the durable record."""
        async with nullcontext(conn) if conn is not None else self._engine.connect() as db:
            initial = await db.scalar(select(Grab.initial_stock).where(Grab.id == grab.id))
            rows = (
                await db.execute(
                    select(GrabClaim.phone_hash, func.count())
                    .where(GrabClaim.grab_id == grab.id)
                    .group_by(GrabClaim.phone_hash)
                )
            ).all()
        won = sum(count for _, count in rows)
        args: list[Any] = [max(0, int(initial or 0) - won)]
        for phone_hash, count in rows:
            args += [phone_hash, count]
        stock, winners, _ = self._keys(grab.id)
        await self._init(keys=[stock, winners], args=args)

    async def replay(self, grab: GrabInfo, who: Claimant, key: str) -> ClaimAnswer | None:
        _, _, answers = self._keys(grab.id)
        stored: Any = await self._redis.hget(answers, f"{who.phone_hash}:{key}")
        return None if stored is None else self._answer(grab, stored.decode())

    async def remember(self, grab: GrabInfo, who: Claimant, key: str, result: Result) -> None:
        _, _, answers = self._keys(grab.id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(answers, f"{who.phone_hash}:{key}", result)
            pipe.expire(answers, IDEMPOTENCY_TTL)
            await pipe.execute()

    async def stock_left(self, grab: GrabInfo, conn: AsyncConnection | None = None) -> int:
        stock, _, _ = self._keys(grab.id)
        value = await self._redis.get(stock)
        if value is None:
            await self._initialise(grab, conn)
            value = await self._redis.get(stock)
        return int(value or 0)

    async def restock(self, grab_id: int, total: int, conn: AsyncConnection) -> None:
        stock, winners, _ = self._keys(grab_id)
        if int(await self._restock(keys=[stock, winners], args=[total])) < 0:
            raise Conflict(N_("More units than that were already won."))
        won = await conn.scalar(select(func.count()).where(GrabClaim.grab_id == grab_id))
        await conn.execute(
            update(Grab)
            .where(Grab.id == grab_id)
            .values(initial_stock=total, stock=max(0, total - int(won or 0)))
        )

    async def winners(self, grab: GrabInfo) -> dict[str, int] | None:
        _, winners, _ = self._keys(grab.id)
        raw: Any = await self._redis.hgetall(winners)
        return {k.decode(): int(v) for k, v in raw.items()}

    async def forget(self, phone_hash: str) -> None:
        async with self._engine.connect() as conn:
            grab_ids = list((await conn.execute(select(Grab.id))).scalars())
        for grab_id in grab_ids:
            await self._forget_in(grab_id, phone_hash)

    async def _forget_in(self, grab_id: int, phone_hash: str) -> None:
        _, winners, answers = self._keys(grab_id)
        await self._forget(keys=[winners], args=[phone_hash, DELETED_UNITS])
        fields = [
            field
            async for field, _ in self._redis.hscan_iter(
                answers, match=f"{redis_glob(phone_hash)}:*"
            )
        ]
        if fields:
            await self._redis.hdel(answers, *fields)

    async def pending(self) -> int:
        """Stream entries not yet written to SQL (read or not)."""
        return await self.writer.pending()

    async def drain(self) -> None:
        """Write whatever is in the stream now (tests, the check command, shutdown)."""
        await self.writer.drain()

    async def settle(self, seconds: float = 10.0) -> None:
        """Until the claim stream is empty: every win Redis decided written to SQL, those
        another process's writer has read and not finished too (taken over: written twice
        changes nothing). Bounded: while taps keep coming the stream may never empty, and
        after ``seconds`` what is written is what the caller sees."""
        with suppress(TimeoutError):
            await self.writer.flush(self._stream, seconds)

    async def start(self) -> None:
        await self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()
