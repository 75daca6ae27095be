"""Staff sign-in and its limits (docs/security.md, "Staff sign-in"): hard limits per client
address and per (username, address), a growing delay per username, all counted in the side
store; the admins' view of the limits in force, and lifting one."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import now
from app.core.errors import AuthenticationFailed, InvalidInput, RateLimited
from app.core.i18n import N_
from app.core.ratelimit import RateLimiter
from app.settings import Settings
from app.staff.audit import audit
from app.staff.models import StaffUser
from app.staff.passwords import PasswordChecks, hash_password, needs_rehash, verify_password
from app.staff.schemas import LoginLimitClear, Staff

# What StaffCreate accepts as a username, lowercased: no account can have any other name.
_USERNAME = re.compile(r"[a-z0-9_.\-]{2,64}")
_NO_LIMIT = 2**31  # the per-username count only slows down, it never refuses
LimitKind = Literal["ip", "user_ip", "user"]
# A counter store that cannot take a write in time (SQLite locked, pools exhausted).
_SIDE_STORE_BUSY = (OperationalError, SQLTimeoutError, RedisConnectionError, RedisTimeoutError)
log = logging.getLogger("leadkit.staff")


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """The staff sign-in limits. Hard limits (429 until the window ends) per client address
    and per (username, address) pair; per username only a growing, capped delay, so nobody
    can lock a colleague out by typing wrong passwords for their name."""

    max_per_ip: int
    max_per_user_ip: int
    window: int
    slowdown_after: int
    slowdown_base: float
    slowdown_max: float

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginPolicy:
        return cls(
            max_per_ip=settings.login_max_per_ip,
            max_per_user_ip=settings.login_max_per_user_ip,
            window=settings.login_window_seconds,
            slowdown_after=settings.login_slowdown_after,
            slowdown_base=settings.login_slowdown_base_seconds,
            slowdown_max=settings.login_slowdown_max_seconds,
        )

    def delay(self, failures: int) -> float:
        """Seconds an attempt waits when its username has ``failures`` attempts since its
        last successful sign-in: nothing at first, then doubling up to the cap."""
        over = failures - self.slowdown_after
        if over < 0 or self.slowdown_base <= 0:
            return 0.0
        return float(min(self.slowdown_max, self.slowdown_base * 2 ** min(over, 32)))


def _address(ip: str) -> str:
    # Quoted: a key part never holds a glob character or a separator of its own.
    return quote(ip, safe=":.")


def _ip_key(ip: str) -> str:
    return f"login:ip:{_address(ip)}"


def _user_ip_key(username: str, ip: str) -> str:
    return f"login:user_ip:{username}:{_address(ip)}"


def _user_key(username: str) -> str:
    return f"login:user:{username}"


async def authenticate(
    db: AsyncSession,
    limiter: RateLimiter,
    checks: PasswordChecks,
    policy: LoginPolicy,
    *,
    username: str,
    password: str,
    ip: str,
) -> StaffUser:
    """Check a sign-in attempt.

    The attempt is counted before its password is checked: the count is a reservation, so
    parallel attempts cannot all slip under a limit read beforehand, and at most the limit's
    number of passwords is ever checked per window. A success gives its reservation back."""
    username = username.strip().lower()
    named = _USERNAME.fullmatch(username) is not None
    at = time.time()
    reserved = [(_ip_key(ip), policy.max_per_ip, policy.window)]
    if named:
        reserved += [
            (_user_ip_key(username, ip), policy.max_per_user_ip, policy.window),
            (_user_key(username), _NO_LIMIT, policy.window),
        ]
    # A full hashing queue refuses before anything is counted: a flood costs no writes.
    checks.refuse_when_full()
    try:
        verdicts = await limiter.hit_all(reserved)
    except _SIDE_STORE_BUSY as exc:
        # The counters cannot take the attempt in time: refuse it unchecked (fail closed).
        log.warning("sign-in refused, rate-limit store busy: %r", exc)
        raise checks.refusal() from exc
    refused = [verdict.retry_after for verdict in verdicts if not verdict.allowed]
    if refused:
        raise RateLimited(
            N_("Too many login attempts. Please wait and try again."), retry_after=max(refused)
        )
    if not named:
        # No account can have this name, as the form rules (public anyway) say: no hash.
        raise AuthenticationFailed()
    # Attempts for this username from anywhere since its last success, this one excluded.
    delay = policy.delay(verdicts[2].count - 1)
    if delay:
        await asyncio.sleep(delay)
    try:
        async with checks.turn():
            # Looked up inside the turn: a request waiting in the queue holds no connection.
            user = (
                await db.execute(select(StaffUser).where(StaffUser.username == username))
            ).scalar()
            ok = await checks.run(verify_password, user.password_hash if user else None, password)
            if ok and user is not None and needs_rehash(user.password_hash):
                user.password_hash = await checks.run(hash_password, password)
    except RateLimited:
        # Refused before any password was checked: the attempt did not happen.
        for key, _, window in reserved:
            await _settle(limiter.refund(key, window, at))
        raise
    if not ok or user is None or not user.is_active:
        raise AuthenticationFailed()
    await _settle(limiter.refund(_ip_key(ip), policy.window, at))
    await _settle(limiter.clear(_user_ip_key(username, ip), policy.window))
    await _settle(limiter.clear(_user_key(username), policy.window))
    user.last_login_at = now()
    return user


async def _settle(write: Awaitable[None]) -> None:
    """Give back or clear a count after the fact; a busy store only leaves the count standing
    (it runs out with its window), it never fails the sign-in."""
    try:
        await write
    except _SIDE_STORE_BUSY as exc:
        log.warning("sign-in count not settled, rate-limit store busy: %r", exc)


@dataclass(frozen=True, slots=True)
class LoginLimit:
    """A sign-in limit in force: an address or a (username, address) pair being refused, or a
    username being slowed down (``delay`` seconds per attempt), until the window ends."""

    kind: LimitKind
    username: str
    ip: str
    attempts: int
    until: dt.datetime
    delay: float


async def login_limits(limiter: RateLimiter, policy: LoginPolicy) -> list[LoginLimit]:
    """The sign-in limits in force now, for the admins' page."""
    found: list[LoginLimit] = []
    kinds: tuple[tuple[LimitKind, str, int], ...] = (
        ("ip", "login:ip:", policy.max_per_ip),
        ("user_ip", "login:user_ip:", policy.max_per_user_ip),
        ("user", "login:user:", policy.slowdown_after if policy.slowdown_base > 0 else _NO_LIMIT),
    )
    for kind, prefix, at_least in kinds:
        for entry in await limiter.counts(prefix, policy.window, at_least=max(1, at_least)):
            rest = entry.key.removeprefix(prefix)
            if kind == "ip":
                username, ip = "", unquote(rest)
            elif kind == "user_ip":
                username, _, address = rest.partition(":")
                ip = unquote(address)
            else:
                username, ip = rest, ""
            found.append(
                LoginLimit(
                    kind=kind,
                    username=username,
                    ip=ip,
                    attempts=entry.count,
                    until=now() + dt.timedelta(seconds=entry.retry_after),
                    delay=policy.delay(entry.count) if kind == "user" else 0.0,
                )
            )
    return found


async def clear_login_limit(
    db: AsyncSession,
    limiter: RateLimiter,
    policy: LoginPolicy,
    actor: Staff,
    data: LoginLimitClear,
    ip: str = "",
) -> None:
    """Lift one sign-in limit (an admin's decision, audited)."""
    username = data.username.strip().lower()
    address = data.address.strip()
    if data.kind != "ip" and not _USERNAME.fullmatch(username):
        raise InvalidInput(fields={"username": "invalid"})
    if data.kind != "user" and not address:
        raise InvalidInput(fields={"address": "missing"})
    if data.kind == "ip":
        key = _ip_key(address)
    elif data.kind == "user_ip":
        key = _user_ip_key(username, address)
    else:
        key = _user_key(username)
    await limiter.clear(key, policy.window)
    target = "@".join(part for part in (username, address) if part)
    await audit(db, actor, "login.limit.clear", target, {"kind": data.kind}, ip)
