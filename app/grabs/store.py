"""Where claims are decided: one interface, a SQL store and a Redis store.

SQL (SQLite and PostgreSQL): in one transaction, insert the claim first under the unique
(grab, phone, n) key, trying n = 1..limit, then ``UPDATE grab SET stock = stock - 1 WHERE id = ?
AND stock > 0 AND <open>``; when that changes no row the transaction rolls back. Decrementing
first would let a phone that is over its limit burn a unit; inserting first cannot.

Redis: one Lua script does the duplicate check, the stock check, the decrement, records the
winner and appends the claim to a stream; a writer task drains the stream into SQL (insert on
conflict do nothing, so a redelivered entry changes nothing) and brings ``grab.stock`` level.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.clock import now
from app.core.errors import Conflict
from app.core.i18n import N_
from app.core.models import rate_counter
from app.core.ratelimit import window_start
from app.events.models import FunnelEvent
from app.events.schemas import EventContext, GrabWon
from app.events.service import event_row
from app.grabs.codes import display, new_code
from app.grabs.live import stop_task
from app.grabs.models import Grab, GrabClaim
from app.grabs.schemas import ClaimAnswer, Result, Voucher
from app.leads.models import Lead
from app.visitors.models import Visitor

log = logging.getLogger("leadkit.grabs")
IDEMPOTENCY_TTL = 86_400
# A claim whose owner deleted their data keeps its unit (won + remaining = initial) under a
# phone "hash" that is the hash of no number: TOMBSTONE + the claim's voucher code, unique per
# claim. Redis counts such units under one winners field, DELETED_UNITS.
TOMBSTONE = "deleted:"
DELETED_UNITS = TOMBSTONE + "units"
# Refusals kept for replays, as small integers in the SQL key/expiry table.
_REFUSAL_CODES: dict[str, int] = {"sold_out": 1, "already_claimed": 2, "not_open": 3}
_REFUSALS_BY_CODE = {v: k for k, v in _REFUSAL_CODES.items()}


@dataclass(frozen=True, slots=True)
class GrabInfo:
    """A grab's settings as the claim path needs them (cached per process for a moment)."""

    id: int
    tool_id: int
    tool_version: int
    slug: str
    title: str
    offer: str
    image_url: str
    initial_stock: int
    per_phone_limit: int
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    mode: str
    voucher_prefix: str
    voucher_valid_days: int
    voucher_where: str


@dataclass(frozen=True, slots=True)
class Claimant:
    """An authorised visitor: who claims (the phone's lookup hash) and for the funnel."""

    visitor_id: int
    lead_id: int
    phone_hash: str
    platform: str
    link_id: int | None


def tap_limit_key(visitor_id: int) -> str:
    """The rate-limit key of one visitor's taps (counted by the service or the claim script)."""
    return f"grab:v:{visitor_id}"


def is_tombstone(phone_hash: str) -> bool:
    """True for the phone field of a unit won by someone who has since deleted their data."""
    return phone_hash.startswith(TOMBSTONE)


def _glob(text: str) -> str:
    """``text`` as a literal inside a Redis MATCH pattern."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)


def claim_context(grab: GrabInfo, who: Claimant | None) -> EventContext:
    """The funnel context of a tap on ``grab`` by ``who`` (None: not known yet)."""
    if who is None:
        return EventContext(tool_id=grab.tool_id, tool_version=grab.tool_version)
    return EventContext(
        visitor_id=who.visitor_id,
        lead_id=who.lead_id,
        link_id=who.link_id,
        platform=who.platform,
        tool_id=grab.tool_id,
        tool_version=grab.tool_version,
    )


def voucher(grab: GrabInfo, code: str, n: int, expires_at: dt.datetime) -> Voucher:
    return Voucher(
        code=code, display=display(code), n=n, expires_at=expires_at, where=grab.voucher_where
    )


def open_clause(at: dt.datetime) -> Any:
    """SQL for "the grab takes claims at ``at``" (the host's override, else the schedule)."""
    return or_(
        Grab.mode == "open",
        and_(
            Grab.mode == "schedule",
            Grab.starts_at.is_not(None),
            Grab.starts_at <= at,
            or_(Grab.ends_at.is_(None), Grab.ends_at > at),
        ),
    )


class ClaimRateLimited(Exception):
    """A rate limit counted inside the claim (Redis store) was exceeded; nothing was claimed."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = max(1, retry_after)


@runtime_checkable
class ClaimStore(Protocol):
    # True when ``claim`` counts ``limits`` itself (raising ClaimRateLimited); otherwise the
    # caller applies them first.
    limits_inline: bool

    async def claim(
        self,
        grab: GrabInfo,
        who: Claimant,
        key: str | None,
        limits: Sequence[tuple[str, int, int]] = (),
    ) -> tuple[ClaimAnswer, bool]:
        """Decide one claim: won (with a voucher), sold_out, already_claimed or not_open; and
        whether it is the answer an earlier request with the same key got (a replay)."""
        ...

    async def replay(self, grab: GrabInfo, who: Claimant, key: str) -> ClaimAnswer | None:
        """The answer an earlier request with this Idempotency-Key got, if any."""
        ...

    async def remember(self, grab: GrabInfo, who: Claimant, key: str, result: Result) -> None:
        """Keep a refusal decided outside the store (not_open) for replays."""
        ...

    async def stock_left(self, grab: GrabInfo, conn: AsyncConnection | None = None) -> int:
        """Units left; through ``conn`` (the request's connection) when given."""
        ...

    async def restock(self, grab_id: int, total: int, conn: AsyncConnection) -> None:
        """Make ``total`` the grab's initial stock, in the caller's transaction (``conn``);
        Conflict if more were already won."""
        ...

    async def winners(self, grab: GrabInfo) -> dict[str, int] | None:
        """Phone hash → units won, as the hot store sees it (None: SQL is the only record)."""
        ...

    async def forget(self, phone_hash: str) -> None:
        """Forget a phone whose owner deleted their data: its idempotency answers go, and what
        it won is counted only as a deleted person's units (the deletion itself turns its SQL
        claims into tombstones). Idempotent: run again after a failure, it finishes the job."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class SQLClaimStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _idem_key(self, grab: GrabInfo, who: Claimant, key: str) -> str:
        return f"grabidem:{grab.id}:{who.phone_hash}:{key}"

    limits_inline = False  # the service applies the rate limits first

    async def claim(
        self,
        grab: GrabInfo,
        who: Claimant,
        key: str | None,
        limits: Sequence[tuple[str, int, int]] = (),
    ) -> tuple[ClaimAnswer, bool]:
        at = now()
        code = new_code(grab.voucher_prefix)
        expires = at + dt.timedelta(days=grab.voucher_valid_days)
        async with self._engine.connect() as conn:
            trans = await conn.begin()
            # Writes come first: on SQLite the transaction takes the write lock at once and
            # never has to upgrade a read lock under contention.
            if key is not None and not await self._take_key(conn, grab, who, key):
                await trans.rollback()
                replay = True
            else:
                replay = False
                answer = await self._decide(conn, grab, who, key, at, code, expires)
                await trans.commit()
        if replay:
            # The same key is (or was) being answered: its transaction has finished now.
            earlier = await self.replay(grab, who, key)  # type: ignore[arg-type]
            return earlier or ClaimAnswer(result="not_open"), True
        return answer, False

    async def _decide(
        self,
        conn: Any,
        grab: GrabInfo,
        who: Claimant,
        key: str | None,
        at: dt.datetime,
        code: str,
        expires: dt.datetime,
    ) -> ClaimAnswer:
        """Insert the claim under the first free n, then take a unit; inside the caller's
        transaction, which commits whatever this decides."""
        claim_id, won_n = None, 0
        for n in range(1, grab.per_phone_limit + 1):
            inserted = await conn.execute(
                self._insert(GrabClaim)
                .values(
                    grab_id=grab.id,
                    phone_hash=who.phone_hash,
                    n=n,
                    lead_id=who.lead_id,
                    visitor_id=who.visitor_id,
                    idempotency_key=key,
                    claimed_at=at,
                    code=code,
                    expires_at=expires,
                    status="issued",
                )
                .on_conflict_do_nothing(index_elements=["grab_id", "phone_hash", "n"])
                .returning(GrabClaim.id)
            )
            claim_id = inserted.scalar()
            if claim_id is not None:
                won_n = n
                break
        result: Result = "already_claimed"
        if claim_id is not None:
            taken = await conn.execute(
                update(Grab)
                .where(Grab.id == grab.id, Grab.stock > 0, open_clause(at))
                .values(stock=Grab.stock - 1)
            )
            if taken.rowcount == 1:
                # The win's funnel event commits (or not) with the claim itself.
                await conn.execute(
                    insert(FunnelEvent), [event_row(claim_context(grab, who), GrabWon(n=won_n), at)]
                )
                return ClaimAnswer(result="won", voucher=voucher(grab, code, won_n, expires))
            # No unit left (or no longer open): the claim goes, the refusal stays.
            await conn.execute(delete(GrabClaim).where(GrabClaim.id == claim_id))
            stock = await conn.scalar(select(Grab.stock).where(Grab.id == grab.id))
            result = "sold_out" if not stock else "not_open"
        if key is not None:
            await conn.execute(
                update(rate_counter)
                .where(
                    rate_counter.c.key == self._idem_key(grab, who, key),
                    rate_counter.c.window_start == -1,
                )
                .values(count=_REFUSAL_CODES[result])
            )
        return ClaimAnswer(result=result)

    async def _take_key(self, conn: Any, grab: GrabInfo, who: Claimant, key: str) -> bool:
        """Reserve the idempotency key (0 = won: the claim row carries the answer)."""
        taken = await conn.execute(
            self._insert(rate_counter)
            .values(
                key=self._idem_key(grab, who, key),
                window_start=-1,
                count=0,
                expires_at=int(now().timestamp()) + IDEMPOTENCY_TTL,
            )
            .on_conflict_do_nothing(index_elements=["key", "window_start"])
            .returning(rate_counter.c.key)
        )
        return taken.scalar() is not None

    async def replay(self, grab: GrabInfo, who: Claimant, key: str) -> ClaimAnswer | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(GrabClaim.code, GrabClaim.n, GrabClaim.expires_at).where(
                        GrabClaim.grab_id == grab.id,
                        GrabClaim.idempotency_key == key,
                        GrabClaim.phone_hash == who.phone_hash,
                    )
                )
            ).first()
            if row is not None:  # expires_at is DateTimeUTC: aware on every backend
                return ClaimAnswer(
                    result="won", voucher=voucher(grab, row.code, row.n, row.expires_at)
                )
            stored = await conn.scalar(
                select(rate_counter.c.count).where(
                    rate_counter.c.key == self._idem_key(grab, who, key),
                    rate_counter.c.window_start == -1,
                )
            )
        if stored in _REFUSALS_BY_CODE:
            return ClaimAnswer(result=_REFUSALS_BY_CODE[stored])  # type: ignore[arg-type]
        return None

    async def remember(self, grab: GrabInfo, who: Claimant, key: str, result: Result) -> None:
        # The rate-limit table is the installation's keyed, expiring small-integer store;
        # window_start -1 keeps these rows apart from counters and cooldowns.
        expires = int(now().timestamp()) + IDEMPOTENCY_TTL
        async with self._engine.begin() as conn:
            await conn.execute(
                self._insert(rate_counter)
                .values(
                    key=self._idem_key(grab, who, key),
                    window_start=-1,
                    count=_REFUSAL_CODES[result],
                    expires_at=expires,
                )
                .on_conflict_do_nothing(index_elements=["key", "window_start"])
            )

    async def stock_left(self, grab: GrabInfo, conn: AsyncConnection | None = None) -> int:
        query = select(Grab.stock).where(Grab.id == grab.id)
        if conn is not None:
            return int(await conn.scalar(query) or 0)
        async with self._engine.connect() as own:
            return int(await own.scalar(query) or 0)

    async def restock(self, grab_id: int, total: int, conn: AsyncConnection) -> None:
        changed = await conn.execute(
            update(Grab)
            .where(Grab.id == grab_id, Grab.initial_stock - Grab.stock <= total)
            .values(initial_stock=total, stock=total - (Grab.initial_stock - Grab.stock))
        )
        if changed.rowcount != 1:
            raise Conflict(N_("More units than that were already won."))

    async def winners(self, grab: GrabInfo) -> dict[str, int] | None:
        return None

    async def forget(self, phone_hash: str) -> None:
        # The idempotency rows (see _idem_key) name the phone; the claims are SQL's already.
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(rate_counter).where(
                    rate_counter.c.key.startswith("grabidem:", autoescape=True),
                    rate_counter.c.key.contains(f":{phone_hash}:", autoescape=True),
                )
            )


# KEYS: stock, winners, idempotency answers, claim stream, then one rate-limit counter per limit.
# ARGV: phone hash, per-phone limit, idempotency field ('' for none), code, expires (epoch),
#       grab id, visitor id, lead id, idempotency key, claimed at (epoch), answer ttl,
#       number of limits, the win's funnel context (link|platform|tool|version), then
#       (limit, window seconds) per limit.
# The rate limits are counted here (every tap counts, as in RateLimiter.hit_all) so a claim is
# one round trip to Redis; a replay of an answered key is not counted.
CLAIM_LUA = """
if ARGV[3] ~= '' then
  local prev = redis.call('HGET', KEYS[3], ARGV[3])
  if prev then return {'replay', prev} end
end
local stock = redis.call('GET', KEYS[1])
if not stock then return {'uninit', ''} end
local over = 0
for i = 1, tonumber(ARGV[12]) do
  local count = redis.call('INCR', KEYS[4 + i])
  if count == 1 then redis.call('EXPIRE', KEYS[4 + i], tonumber(ARGV[13 + 2 * i]) + 1) end
  if over == 0 and count > tonumber(ARGV[12 + 2 * i]) then over = i end
end
if over > 0 then return {'limited', tostring(over)} end
local have = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local answer
if have >= tonumber(ARGV[2]) then
  answer = 'already_claimed'
elseif tonumber(stock) <= 0 then
  answer = 'sold_out'
else
  redis.call('DECR', KEYS[1])
  local n = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  answer = 'won|' .. n .. '|' .. ARGV[4] .. '|' .. ARGV[5]
  redis.call('XADD', KEYS[4], '*', 'grab', ARGV[6], 'phone', ARGV[1], 'n', n,
    'code', ARGV[4], 'expires', ARGV[5], 'visitor', ARGV[7], 'lead', ARGV[8],
    'key', ARGV[9], 'at', ARGV[10], 'ctx', ARGV[13])
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[3], answer)
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[11]))
end
return {'new', answer}
"""

# KEYS: stock, winners. ARGV: stock left, then phone hash / count pairs. Atomic, once.
INIT_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""

# KEYS: winners. ARGV: phone hash, the deleted-units field. A deleted person's units move to
# the deleted tally (still counted as won); run twice, the second run finds nothing to move.
FORGET_LUA = """
local won = redis.call('HGET', KEYS[1], ARGV[1])
if not won then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[1], ARGV[2], tonumber(won))
return tonumber(won)
"""

# KEYS: stock, winners. ARGV: new total. Returns units won, or -1 when more were won already.
RESTOCK_LUA = """
local won = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do won = won + tonumber(v) end
if tonumber(ARGV[1]) < won then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('SET', KEYS[1], tonumber(ARGV[1]) - won) end
return won
"""


class RedisClaimStore:
    GROUP = "writers"

    def __init__(self, redis: Redis, prefix: str, engine: AsyncEngine) -> None:
        self._redis = redis
        self._prefix = prefix
        self._engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self._stream = f"{prefix}grabs:claims"
        self._claim = redis.register_script(CLAIM_LUA)
        self._init = redis.register_script(INIT_LUA)
        self._restock = redis.register_script(RESTOCK_LUA)
        self._forget = redis.register_script(FORGET_LUA)
        self._consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

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
        at = now()
        code = new_code(grab.voucher_prefix)
        expires = at + dt.timedelta(days=grab.voucher_valid_days)
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
            async for field, _ in self._redis.hscan_iter(answers, match=f"{_glob(phone_hash)}:*")
        ]
        if fields:
            await self._redis.hdel(answers, *fields)

    async def pending(self) -> int:
        """Stream entries not yet written to SQL (read or not)."""
        try:
            return int(await self._redis.xlen(self._stream))
        except ResponseError:
            return 0

    # The writer: stream → SQL.

    BATCH = 500
    BATCH_PAUSE = 0.1  # seconds

    async def _ensure_group(self) -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await self._redis.xgroup_create(self._stream, self.GROUP, id="0", mkstream=True)

    async def start(self) -> None:
        await self._ensure_group()
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="grab-claim-writer")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        # The last entries, best effort and bounded: what is left stays in the stream and the
        # next writer (any process) takes it over.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), timeout=5)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                written = await self._step(block_ms=1000)
                if 0 < written < self.BATCH:
                    # Group commit: during a rush wins arrive a few at a time; a short pause
                    # lets the next transaction carry hundreds of them instead of one or two.
                    # The entries stay in the stream, unacknowledged, until they are written.
                    await asyncio.sleep(self.BATCH_PAUSE)
            except asyncio.CancelledError:
                raise
            except Exception:  # a database or Redis hiccup: the entries stay pending
                log.exception("grab claim writer failed; retrying")
                await asyncio.sleep(1)

    async def drain(self) -> None:
        """Write whatever is in the stream now (tests, the check command, shutdown)."""
        await self._ensure_group()
        while await self._step(block_ms=None) > 0:
            pass

    async def _step(self, block_ms: int | None) -> int:
        # Entries another writer read but never acknowledged (it died) come back after 30 s.
        claimed: Any = await self._redis.xautoclaim(
            self._stream, self.GROUP, self._consumer, min_idle_time=30_000, count=self.BATCH
        )
        entries = list(claimed[1])
        mine: Any = await self._redis.xreadgroup(
            self.GROUP, self._consumer, {self._stream: "0"}, count=self.BATCH
        )
        for _, items in mine:
            entries += items
        if not entries:
            fresh: Any = await self._redis.xreadgroup(
                self.GROUP, self._consumer, {self._stream: ">"}, count=self.BATCH, block=block_ms
            )
            for _, items in fresh or []:
                entries += items
        if not entries:
            return 0
        await self._write([fields for _, fields in entries if fields])
        ids = [entry_id for entry_id, _ in entries]
        await self._redis.xack(self._stream, self.GROUP, *ids)
        await self._redis.xdel(self._stream, *ids)
        return len(ids)

    async def _write(self, entries: list[dict[bytes, bytes]]) -> None:
        rows: list[dict[str, Any]] = []
        contexts: list[EventContext] = []
        for fields in entries:
            f = {k.decode(): v.decode() for k, v in fields.items()}
            link, platform, tool, version = (f.get("ctx") or "0|browser|0|0").split("|")
            contexts.append(
                EventContext(
                    visitor_id=int(f["visitor"]) or None,
                    lead_id=int(f["lead"]) or None,
                    link_id=int(link) or None,
                    platform=platform,
                    tool_id=int(tool) or None,
                    tool_version=int(version) or None,
                )
            )
            rows.append(
                {
                    "grab_id": int(f["grab"]),
                    "phone_hash": f["phone"],
                    "n": int(f["n"]),
                    "lead_id": int(f["lead"]) or None,
                    "visitor_id": int(f["visitor"]) or None,
                    "idempotency_key": f["key"] or None,
                    "claimed_at": dt.datetime.fromtimestamp(float(f["at"]), dt.UTC),
                    "code": f["code"],
                    "expires_at": dt.datetime.fromtimestamp(int(f["expires"]), dt.UTC),
                    "status": "issued",
                }
            )
        if not rows:
            return
        grab_ids = {row["grab_id"] for row in rows}
        async with self._engine.begin() as conn:
            departed = await self._departed(conn, rows, contexts)
            # A redelivered entry (a writer died after writing, before acknowledging) inserts
            # nothing, and so records no second win.
            inserted = {
                (grab_id, phone_hash, n)
                for grab_id, phone_hash, n in await conn.execute(
                    self._insert(GrabClaim)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["grab_id", "phone_hash", "n"])
                    .returning(GrabClaim.grab_id, GrabClaim.phone_hash, GrabClaim.n)
                )
            }
            won_events = [
                event_row(ctx, GrabWon(n=row["n"]), row["claimed_at"])
                for row, ctx in zip(rows, contexts, strict=True)
                if (row["grab_id"], row["phone_hash"], row["n"]) in inserted
            ]
            if won_events:
                await conn.execute(insert(FunnelEvent), won_events)
            won = (
                select(func.count())
                .where(GrabClaim.grab_id == Grab.id)
                .correlate(Grab)
                .scalar_subquery()
            )
            await conn.execute(
                update(Grab)
                .where(Grab.id.in_(grab_ids), Grab.initial_stock >= won)
                .values(stock=Grab.initial_stock - won)
            )
        # After the commit: the Redis side of a person deleted meanwhile, as the deletion does.
        for grab_id, phone_hash, visitor_id in departed:
            await self._forget_in(grab_id, phone_hash)
            if visitor_id is not None:  # the tap counter the claim script kept for it
                pattern = f"{_glob(self._prefix)}rl:{_glob(tap_limit_key(visitor_id))}:*"
                async for name in self._redis.scan_iter(match=pattern):
                    await self._redis.delete(name)

    async def _departed(
        self, conn: Any, rows: list[dict[str, Any]], contexts: list[EventContext]
    ) -> list[tuple[int, str, int | None]]:
        """Claims decided for a person whose data was deleted before they reached SQL (queued
        in the stream then, or tapped from a claimant another process still had cached):
        written as tombstones, void, naming nobody, so the unit stays counted and nothing of
        the person lands in SQL. A visitor that no longer exists is dropped from its row.
        Returns (grab id, phone hash, visitor id) of each such claim. A deletion committing
        between this look-up and the insert fails the insert on its foreign key; the batch is
        then retried and comes here again."""
        lead_ids = {row["lead_id"] for row in rows if row["lead_id"] is not None}
        visitor_ids = {row["visitor_id"] for row in rows if row["visitor_id"] is not None}
        leads: set[int] = set()
        if lead_ids:
            found = await conn.execute(select(Lead.id).where(Lead.id.in_(lead_ids)))
            leads = set(found.scalars())
        visitors: set[int] = set()
        if visitor_ids:
            found = await conn.execute(select(Visitor.id).where(Visitor.id.in_(visitor_ids)))
            visitors = set(found.scalars())
        departed: list[tuple[int, str, int | None]] = []
        for i, row in enumerate(rows):
            if row["lead_id"] is not None and row["lead_id"] not in leads:
                departed.append((row["grab_id"], row["phone_hash"], row["visitor_id"]))
                row.update(
                    phone_hash=TOMBSTONE + row["code"],
                    n=1,
                    lead_id=None,
                    visitor_id=None,
                    idempotency_key=None,
                    status="void",
                )
                contexts[i] = msgspec.structs.replace(contexts[i], lead_id=None, visitor_id=None)
            elif row["visitor_id"] is not None and row["visitor_id"] not in visitors:
                row["visitor_id"] = None
                contexts[i] = msgspec.structs.replace(contexts[i], visitor_id=None)
        return departed
