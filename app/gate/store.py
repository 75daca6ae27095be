"""One-time-code storage behind one interface: SQL (embedded default) and Redis (production).

Both make "use" and "count a wrong attempt" atomic, so a code can be used once even when two
requests race, and dies after the allowed number of wrong attempts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any, Literal, Protocol, runtime_checkable

from redis.asyncio import Redis
from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.gate.models import OtpCode

Check = Literal["ok", "wrong", "expired", "dead", "none"]


def code_hash(phone_hash: str, code: str) -> str:
    # Bound to the phone so one stored hash says nothing about another phone's code.
    return hashlib.sha256(f"{phone_hash}:{code}".encode()).hexdigest()


@runtime_checkable
class OtpStore(Protocol):
    async def issue(self, phone_hash: str, code: str, ttl: int, dev_code: str) -> None:
        """Store a new code for the phone; any earlier live code for it dies."""
        ...

    async def check(self, phone_hash: str, code: str, max_attempts: int) -> Check:
        """Use the code if it matches; count a wrong attempt otherwise."""
        ...

    async def dev_code(self, phone_hash: str) -> str | None:
        """Development inbox: the live code's plain text, if the console provider sent it."""
        ...

    async def forget(self, phone_hash: str) -> None:
        """Remove every code of the phone, live or not (its owner deleted their data)."""
        ...


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SQLOtpStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def issue(self, phone_hash: str, code: str, ttl: int, dev_code: str) -> None:
        now = _now()
        async with self._engine.begin() as conn:
            await conn.execute(
                update(OtpCode)
                .where(OtpCode.phone_hash == phone_hash, OtpCode.state == "live")
                .values(state="dead")
            )
            await conn.execute(
                insert(OtpCode).values(
                    phone_hash=phone_hash,
                    code_hash=code_hash(phone_hash, code),
                    created_at=now,
                    expires_at=now + dt.timedelta(seconds=ttl),
                    attempts=0,
                    state="live",
                    dev_code=dev_code,
                )
            )

    async def check(self, phone_hash: str, code: str, max_attempts: int) -> Check:
        now = _now()
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    select(OtpCode.id, OtpCode.code_hash, OtpCode.expires_at, OtpCode.state)
                    .where(OtpCode.phone_hash == phone_hash)
                    .order_by(OtpCode.id.desc())
                    .limit(1)  # pragma: no mutate (first() reads one row; LIMIT spares the rest)
                )
            ).first()
            if row is None:
                return "none"
            if row.state != "live":
                return "dead"
            if row.expires_at <= now:  # DateTimeUTC: aware on every backend
                return "expired"
            if hmac.compare_digest(row.code_hash, code_hash(phone_hash, code)):
                used = await conn.execute(
                    update(OtpCode)
                    .where(OtpCode.id == row.id, OtpCode.state == "live")
                    .values(state="used", dev_code="")
                )
                return "ok" if used.rowcount == 1 else "dead"
            counted = await conn.execute(
                update(OtpCode)
                .where(OtpCode.id == row.id, OtpCode.state == "live")
                .values(
                    attempts=OtpCode.attempts + 1,
                    state=case((OtpCode.attempts + 1 >= max_attempts, "dead"), else_="live"),
                )
            )
            # Used or killed by a concurrent check since the read: as Redis answers, "dead".
            return "wrong" if counted.rowcount == 1 else "dead"

    async def dev_code(self, phone_hash: str) -> str | None:
        async with self._engine.connect() as conn:
            value = (
                await conn.execute(
                    # ``issue`` leaves at most one live code per phone.
                    select(OtpCode.dev_code).where(
                        OtpCode.phone_hash == phone_hash, OtpCode.state == "live"
                    )
                )
            ).scalar()
        return value or None

    async def forget(self, phone_hash: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(OtpCode).where(OtpCode.phone_hash == phone_hash))


# KEYS[1] = the code's hash key. ARGV = candidate hash, max attempts.
_CHECK = """
local stored = redis.call('HGET', KEYS[1], 'hash')
if not stored then return 'none' end
if redis.call('HGET', KEYS[1], 'state') ~= 'live' then return 'dead' end
if stored == ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', 'used')
  redis.call('HDEL', KEYS[1], 'dev')
  return 'ok'
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempts >= tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], 'state', 'dead') end
return 'wrong'
"""


class RedisOtpStore:
    """Codes expire with their key's TTL; the script keeps check-and-use atomic."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}otp:"
        self._check = redis.register_script(_CHECK)

    async def issue(self, phone_hash: str, code: str, ttl: int, dev_code: str) -> None:
        key = self._prefix + phone_hash
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(
                key, mapping={"hash": code_hash(phone_hash, code), "state": "live", "attempts": 0}
            )
            if dev_code:
                pipe.hset(key, "dev", dev_code)
            # A used or dead code lingers past its TTL only as long as the TTL itself.
            pipe.expire(key, ttl)
            await pipe.execute()

    async def check(self, phone_hash: str, code: str, max_attempts: int) -> Check:
        result = await self._check(
            keys=[self._prefix + phone_hash], args=[code_hash(phone_hash, code), max_attempts]
        )
        value = result.decode()  # our client does not decode replies (app/core/redis.py)
        # An expired key is gone: Redis cannot tell "expired" from "never sent".
        return value if value in ("ok", "wrong", "dead") else "expired"

    async def dev_code(self, phone_hash: str) -> str | None:
        key = self._prefix + phone_hash
        found: Any = await self._redis.hmget(key, ["state", "dev"])
        state, dev = found
        if state != b"live" or not dev:
            return None
        return str(dev.decode())  # our client does not decode replies (app/core/redis.py)

    async def forget(self, phone_hash: str) -> None:
        await self._redis.delete(self._prefix + phone_hash)
