"""Staff accounts: passwords, login sessions, API tokens, roles. No web framework here."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, TypeVar
from urllib.parse import quote, unquote

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import now
from app.core.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, RateLimited
from app.core.i18n import N_
from app.core.models import AuditEntry
from app.core.ratelimit import RateLimiter
from app.settings import Settings
from app.staff.models import ApiToken, StaffSession, StaffUser
from app.staff.schemas import ApiTokenCreate, LoginLimitClear, Staff, StaffCreate, StaffUpdate

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both paths cost one argon2 hash.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
TOKEN_PREFIX = "lk_"  # noqa: S105 (a marker, not a secret)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _sha256(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _principal(user: StaffUser, via: str = "session") -> Staff:
    return Staff(
        id=user.id,
        username=user.username,
        display_name=user.display_name or user.username,
        role=user.role,
        via=via,  # type: ignore[arg-type]
    )


async def audit(
    db: AsyncSession,
    actor: Staff | None,
    action: str,
    target: str,
    detail: dict | None = None,
    ip: str = "",
) -> None:
    """Record a staff action in the audit trail (same transaction as the action)."""
    db.add(
        AuditEntry(
            actor_id=actor.id if actor else None,
            actor_name=actor.username if actor else "system",
            action=action,
            target=target[:128],
            detail=detail or {},
            ip=ip[:64],
        )
    )


# --- sign-in (docs/security.md, "Staff sign-in") ---------------------------------------------

T = TypeVar("T")
# What StaffCreate accepts as a username, lowercased: no account can have any other name.
_USERNAME = re.compile(r"[a-z0-9_.\-]{2,64}")
_NO_LIMIT = 2**31  # the per-username count only slows down, it never refuses
LimitKind = Literal["ip", "user_ip", "user"]
# Below the event loop (nice 0): see _yield_cpu.
HASHING_NICENESS = 10
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


class PasswordChecks:
    """This worker process's password hashing. argon2 costs a few hundred milliseconds of
    CPU per hash by design, so it runs in threads of its own (the event loop keeps serving
    visitors meanwhile), at most ``concurrency`` at once; up to ``queue`` more wait their turn,
    and any further one is refused at once (429) rather than piling up behind a flood."""

    RETRY_AFTER = 2

    def __init__(self, concurrency: int, queue: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._pool = _hashing_pool(concurrency)
        self._queue = queue
        self._waiting = 0

    def refusal(self) -> RateLimited:
        return RateLimited(
            N_("Many sign-ins are being checked right now. Please try again in a moment."),
            retry_after=self.RETRY_AFTER,
        )

    def refuse_when_full(self) -> None:
        """Raise ``RateLimited`` when every slot is taken and the queue is full: the cheapest
        answer to a flood, before anything is counted or written."""
        if self._slots.locked() and self._waiting >= self._queue:
            raise self.refusal()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold one of the hashing slots; raises ``RateLimited`` when the queue is full."""
        self.refuse_when_full()
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a hashing thread, inside ``turn()``. The pool has ``concurrency``
        threads, so even a cancelled request's hash, which runs on, keeps the bound."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _hashing_pool(size: int) -> ThreadPoolExecutor:
    # One pool per size in a process (a server has one app; the tests build many).
    if size not in _POOLS:
        _POOLS[size] = ThreadPoolExecutor(
            size, thread_name_prefix="leadkit-password", initializer=_yield_cpu
        )
    return _POOLS[size]


def _yield_cpu() -> None:
    """Hashing threads run below the event loop's CPU priority, so with every core busy
    hashing a page request is still served first (argon2's own lane threads inherit it)."""
    if sys.platform == "linux":  # per thread there; elsewhere it would be the whole process
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


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
            ok = await checks.run(_verify, user.password_hash if user else _DUMMY_HASH, password)
            if ok and user is not None and _hasher.check_needs_rehash(user.password_hash):
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


async def start_session(
    db: AsyncSession, user: StaffUser, *, ttl_hours: int, ip: str, user_agent: str
) -> str:
    """Open a login session; returns the raw token to put (signed) in the cookie."""
    raw = secrets.token_urlsafe(32)
    db.add(
        StaffSession(
            token_hash=_sha256(raw),
            user_id=user.id,
            created_at=now(),
            expires_at=now() + dt.timedelta(hours=ttl_hours),
            ip=ip[:64],
            user_agent=user_agent[:255],
        )
    )
    await audit(db, _principal(user), "staff.login", user.username, ip=ip)
    return raw


async def resolve_session(db: AsyncSession, raw: str) -> Staff | None:
    row = (
        await db.execute(select(StaffSession).where(StaffSession.token_hash == _sha256(raw)))
    ).scalar()
    if row is None or row.expires_at <= now() or not row.user.is_active:
        return None
    return _principal(row.user)


async def end_session(db: AsyncSession, raw: str) -> None:
    row = (
        await db.execute(select(StaffSession).where(StaffSession.token_hash == _sha256(raw)))
    ).scalar()
    if row is not None:
        await db.delete(row)


async def list_users(db: AsyncSession) -> list[StaffUser]:
    return list((await db.execute(select(StaffUser).order_by(StaffUser.id))).scalars())


async def get_user(db: AsyncSession, user_id: int) -> StaffUser:
    user = await db.get(StaffUser, user_id)
    if user is None:
        raise NotFound(N_("No such staff member."))
    return user


async def create_user(
    db: AsyncSession, actor: Staff | None, data: StaffCreate, ip: str = ""
) -> StaffUser:
    """Create a staff member. Usernames are case-insensitive and unique."""
    username = data.username.strip().lower()
    exists = await db.scalar(select(func.count()).where(StaffUser.username == username))
    if exists:
        raise Conflict(N_("This username is already taken."), fields={"username": "taken"})
    user = StaffUser(
        username=username,
        display_name=data.display_name.strip(),
        password_hash=await anyio.to_thread.run_sync(hash_password, data.password),
        role=data.role,
        is_active=True,
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError as exc:  # a concurrent create won the race
        raise Conflict(N_("This username is already taken.")) from exc
    await audit(db, actor, "staff.create", username, {"role": data.role}, ip)
    return user


async def update_user(
    db: AsyncSession, actor: Staff, user_id: int, data: StaffUpdate, ip: str = ""
) -> StaffUser:
    """Change role, active flag, display name, and optionally the password."""
    user = await get_user(db, user_id)
    if data.password and len(data.password) < 10:
        raise InvalidInput(
            N_("Passwords need at least 10 characters."), fields={"password": "too_short"}
        )
    removing_admin = user.role == "admin" and (data.role != "admin" or not data.is_active)
    if removing_admin:
        admins = await db.scalar(
            select(func.count()).where(StaffUser.role == "admin", StaffUser.is_active.is_(True))
        )
        if (admins or 0) <= 1:
            raise Conflict(N_("The last active admin cannot be demoted or deactivated."))
    changes = {
        k: v
        for k, v in (
            ("role", data.role),
            ("is_active", data.is_active),
            ("display_name", data.display_name.strip()),
        )
        if getattr(user, k) != v
    }
    for key, value in changes.items():
        setattr(user, key, value)
    if data.password:
        user.password_hash = await anyio.to_thread.run_sync(hash_password, data.password)
        changes["password"] = "changed"  # noqa: S105 (audit note, not a secret)
    if "role" in changes or "is_active" in changes or data.password:
        # A changed role or password ends the member's open sessions.
        await db.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    await audit(db, actor, "staff.update", user.username, changes, ip)
    return user


async def create_token(
    db: AsyncSession, actor: Staff | None, data: ApiTokenCreate, ip: str = ""
) -> tuple[ApiToken, str]:
    """Issue an API token. The raw value is returned once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=data.name.strip(),
        prefix=raw[:10],
        token_hash=_sha256(raw),
        role=data.role,
        created_by=actor.username if actor else "cli",
    )
    db.add(token)
    await db.flush()
    await audit(db, actor, "token.create", data.name, {"role": data.role, "id": token.id}, ip)
    return token, raw


async def list_tokens(db: AsyncSession) -> list[ApiToken]:
    return list((await db.execute(select(ApiToken).order_by(ApiToken.id.desc()))).scalars())


async def revoke_token(db: AsyncSession, actor: Staff, token_id: int, ip: str = "") -> None:
    token = await db.get(ApiToken, token_id)
    if token is None:
        raise NotFound(N_("No such API token."))
    if token.revoked_at is None:
        token.revoked_at = now()
        await audit(db, actor, "token.revoke", token.name, {"id": token.id}, ip)


async def resolve_token(db: AsyncSession, raw: str) -> Staff | None:
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 128:
        return None
    token = (await db.execute(select(ApiToken).where(ApiToken.token_hash == _sha256(raw)))).scalar()
    if token is None or token.revoked_at is not None:
        return None
    # Touch at most once a minute so a busy integration doesn't write on every call.
    if token.last_used_at is None or now() - token.last_used_at > dt.timedelta(minutes=1):
        await db.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now()))
    return Staff(
        id=-token.id,
        username=f"token:{token.name}",
        display_name=token.name,
        role=token.role,
        via="token",
    )
